/**
 * The capture tests' process to capture: test/fixtures/socket_owner.py, started in a mode
 * (`zoo`, `server`, `client PORT`), reporting what it set up as JSON and obeying commands.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

import { LineReader } from '../ffi/helpers.ts';
import { fixtures } from '../helpers/cluster.ts';

export interface Owner<Info = any> {
  pid: number;
  info: Info;
  /** Sends one command line and returns its JSON answer. */
  command(line: string): Promise<any>;
  /** Ends the process (SIGKILL, after SIGCONT in case it is stopped) and waits for it. */
  stop(): Promise<void>;
}

const running = new Set<Owner>();

/** Starts the fixture and reads its first report. */
export async function startOwner<Info = any>(args: string[]): Promise<Owner<Info>> {
  const child = Bun.spawn(['python3', join(fixtures, 'socket_owner.py'), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    timeout: 60_000,
  });
  const lines = new LineReader(child.stdout);
  const info = JSON.parse(await lines.next()) as Info & { pid: number };
  const owner: Owner<Info> = {
    pid: info.pid,
    info,
    async command(line) {
      child.stdin.write(`${line}\n`);
      child.stdin.flush();
      return JSON.parse(await lines.next());
    },
    async stop() {
      running.delete(owner);
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await child.exited;
    },
  };
  running.add(owner);
  return owner;
}

/** Stops every owner still running (for afterEach). */
export async function stopOwners(): Promise<void> {
  for (const owner of [...running]) await owner.stop();
}

/** The run state letter of a process (R, S, T, Z, ...). */
export function runState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.charAt(stat.lastIndexOf(')') + 2);
}

/** The fds of this process whose link target is one of `targets` (copies of captured fds). */
export function fdsLinkingTo(targets: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc/self/fd')) {
    try {
      const link = readlinkSync(`/proc/self/fd/${entry}`);
      if (targets.has(link)) found.push(`${entry} -> ${link}`);
    } catch {
      // closed since the directory was read
    }
  }
  return found;
}

/** The socket link targets (`socket:[N]`) of process `pid`. */
export function socketLinks(pid: number): Set<string> {
  const out = new Set<string>();
  for (const entry of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${entry}`);
      if (link.startsWith('socket:')) out.add(link);
    } catch {
      // closed since the directory was read
    }
  }
  return out;
}

/** How many pidfds this process holds. */
export function pidfdCount(): number {
  return [...readdirSync('/proc/self/fd')].filter((entry) => {
    try {
      return readlinkSync(`/proc/self/fd/${entry}`) === 'anon_inode:[pidfd]';
    } catch {
      return false;
    }
  }).length;
}

/** The bytes `fill` sent from stream offset `from` to `to`: byte k is k mod 251. */
export function pattern(from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  for (let k = from; k < to; k++) out[k - from] = k % 251;
  return out;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
