/**
 * What capture reads from /proc: a process's run state and start time, its fd table and the
 * per-fd close-on-exec flag, its command name, which processes hold a given socket, the
 * ephemeral port range and this process's capabilities. Plain file reads: nothing here holds
 * an fd past its call.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

import { O } from '../../ffi/index.ts';

/** The fields of /proc/PID/stat capture uses. */
export interface ProcStat {
  /** The run state letter: R, S, D, T (stopped), t (traced), Z (zombie), X (dead), ... */
  state: string;
  /** Field 22, starttime: clock ticks from boot to the process's start. */
  startTicks: bigint;
}

/**
 * /proc/PID/stat, read past the command name (which may hold spaces and parentheses).
 * @throws the fs error (ENOENT when there is no such process)
 */
export function readStat(pid: number): ProcStat {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  return { state: fields[0] ?? '?', startTicks: BigInt(fields[19] ?? '0') };
}

/** The thread-group id of `pid` (the process a thread belongs to), or undefined. */
export function readTgid(pid: number): number | undefined {
  try {
    const m = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The run state of every thread of the process (empty when it has gone). */
export function threadStates(pid: number): string[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const states: string[] = [];
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      states.push(text.charAt(text.lastIndexOf(')') + 2));
    } catch {
      // The thread exited since the directory was read.
    }
  }
  return states;
}

/** The executable name (comm) of the process, or '' when it cannot be read. */
export function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd();
  } catch {
    return '';
  }
}

/** One entry of /proc/PID/fd: the fd number and what it refers to. */
export interface FdEntry {
  fd: number;
  /** The link target: `socket:[123]`, `pipe:[45]`, `/dev/null`, `anon_inode:[eventfd]`, ... */
  target: string;
}

/**
 * The fd table of the process, in fd order. An fd closed while the table is read is left out.
 * @throws the fs error of reading the directory (ENOENT: no process; EACCES: not permitted)
 */
export function listFds(pid: number): FdEntry[] {
  const entries: FdEntry[] = [];
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    try {
      entries.push({ fd: Number(name), target: readlinkSync(`/proc/${pid}/fd/${name}`) });
    } catch {
      // Closed since the directory was read.
    }
  }
  return entries.sort((a, b) => a.fd - b.fd);
}

/** The inode of a `socket:[N]` link target, or undefined for anything else. */
export function socketInode(target: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(target);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether fd `fd` of the process has close-on-exec set, from /proc/PID/fdinfo (the flag is
 * per fd, so a copy made with pidfd_getfd cannot tell). Undefined when it cannot be read.
 */
export function fdCloexec(pid: number, fd: number): boolean | undefined {
  try {
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const m = /^flags:\s*([0-7]+)$/m.exec(info);
    return m ? (parseInt(m[1]!, 8) & O.CLOEXEC) !== 0 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The processes (thread-group ids, ascending) that hold each of `inodes` at some fd. Reads
 * every readable /proc/PID/fd; processes whose table the caller may not read are skipped.
 */
export function findHolders(inodes: ReadonlySet<number>): Map<number, number[]> {
  const holders = new Map<number, number[]>();
  if (inodes.size === 0) return holders;
  const targets = new Map([...inodes].map((ino) => [`socket:[${ino}]`, ino]));
  for (const pid of numericEntries('/proc')) {
    for (const fd of numericEntries(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const ino = targets.get(target);
      if (ino === undefined) continue;
      const list = holders.get(ino) ?? [];
      if (!list.includes(pid)) list.push(pid);
      holders.set(ino, list);
    }
  }
  return holders;
}

function numericEntries(dir: string): number[] {
  try {
    return readdirSync(dir)
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** The local port range the kernel picks connect() ports from (net.ipv4.ip_local_port_range). */
export function ephemeralPorts(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return { low: low!, high: high! };
  } catch {
    // Not readable (unusual /proc): the kernel's default range follows.
  }
  return { low: 32768, high: 60999 };
}

/** CAP_NET_ADMIN's bit in the capability sets. */
export const CAP_NET_ADMIN = 12;

/** Whether this process has capability `bit` in its effective set. */
export function hasCapability(bit: number): boolean {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}
