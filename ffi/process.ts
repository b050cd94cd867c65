/**
 * Process calls: pidfds (open, take another process's fd, signal) and execve.
 *
 * pidfd_open, pidfd_getfd and pidfd_send_signal are made through syscall(2) with the
 * architecture's numbers (arch.ts), so they work with a glibc older than their wrappers.
 * pidfd_getfd needs Linux 5.6 and PTRACE_MODE_ATTACH_REALCREDS over the target: root, or the
 * same uid with ptrace not restricted by Yama.
 */
import { ptr } from 'bun:ffi';

import { arch } from './arch.ts';
import { check } from './call.ts';
import { sym } from './libc.ts';

/** pidfd_open(2). Returns a pidfd owned by the caller. */
export function pidfdOpen(pid: number, flags = 0): number {
  return check(sym.syscall(arch.sys.pidfd_open, pid, flags, 0, 0), {
    syscall: 'pidfd_open',
    detail: `pid ${pid}`,
  });
}

/** pidfd_getfd(2): a copy of fd `targetFd` of the process behind `pidfd`, owned by the caller. */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  return check(sym.syscall(arch.sys.pidfd_getfd, pidfd, targetFd, 0, 0), {
    syscall: 'pidfd_getfd',
    fd: pidfd,
    detail: `target fd ${targetFd}`,
  });
}

/** pidfd_send_signal(2). */
export function pidfdSendSignal(pidfd: number, signal: number): void {
  check(sym.syscall(arch.sys.pidfd_send_signal, pidfd, signal, 0, 0), {
    syscall: 'pidfd_send_signal',
    fd: pidfd,
    detail: `signal ${signal}`,
  });
}

function cString(text: string): Uint8Array {
  return new TextEncoder().encode(`${text}\0`);
}

/** A NULL-terminated array of pointers to C strings, and the strings it points at. */
function cStringArray(items: readonly string[]): { array: BigUint64Array; keep: Uint8Array[] } {
  const keep = items.map(cString);
  const array = new BigUint64Array(items.length + 1);
  keep.forEach((s, i) => (array[i] = BigInt(ptr(s))));
  return { array, keep };
}

/**
 * execve(2): replaces this process with `path`. Returns only by throwing. Fds without
 * close-on-exec stay open in the new program.
 */
export function execve(path: string, argv: readonly string[], env: Record<string, string>): never {
  const file = cString(path);
  const args = cStringArray(argv);
  const envp = cStringArray(Object.entries(env).map(([k, v]) => `${k}=${v}`));
  const ret = sym.execve(file, args.array, envp.array);
  check(ret < 0 ? ret : -1, { syscall: 'execve', detail: path });
  void args.keep;
  void envp.keep;
  throw new Error('execve returned without an error');
}

export function getpid(): number {
  return sym.getpid();
}

export function getuid(): number {
  return sym.getuid();
}

export function getgid(): number {
  return sym.getgid();
}
