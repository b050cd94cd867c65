/**
 * The process being captured, held by a pidfd for the whole capture so that its pid cannot
 * come to name another process unnoticed. Opening it tells an unknown pid (ENOPROC), a zombie
 * (EZOMBIE) and a process the caller may not trace (ECAPTURE_DENIED) apart; afterwards, any
 * sign that it has gone is EVANISHED.
 *
 * Ownership: the target owns its pidfd and closes it when disposed. `copyFd` returns a new fd
 * owned by the caller.
 */
import { close, pidfdGetfd, pidfdOpen, SyscallError } from '../../ffi/index.ts';
import { CaptureError, denied, noProcess, vanished } from './errors.ts';
import { readStat, readTgid, type ProcStat } from './proc.ts';

/** An fd number no process has: pidfd_getfd on it answers EPERM before EBADF. */
const PROBE_FD = 0x7fff_ffff;

export class CaptureTarget implements Disposable {
  #pidfd: number;

  private constructor(
    readonly pid: number,
    pidfd: number,
    /** Clock ticks from boot to the process's start (/proc/PID/stat field 22). */
    readonly startTicks: bigint,
  ) {
    this.#pidfd = pidfd;
  }

  /**
   * Opens the process `pid` for capture and checks that the caller may copy its fds.
   * @throws {CaptureError} ENOPROC, EZOMBIE or ECAPTURE_DENIED
   */
  static open(pid: number): CaptureTarget {
    const before = statOrNoProcess(pid);
    if ('ZX'.includes(before.state)) {
      throw new CaptureError(
        'EZOMBIE',
        `Cannot capture pid '${pid}': the process has exited and is a zombie (state ${before.state}); it has no sockets left`,
      );
    }

    const tgid = readTgid(pid);
    if (tgid !== undefined && tgid !== pid) {
      throw new CaptureError(
        'ENOPROC',
        `Cannot capture pid '${pid}': it is a thread of process '${tgid}', not a process: capture '${tgid}'`,
      );
    }
    const pidfd = openPidfd(pid);
    const target = new CaptureTarget(pid, pidfd, before.startTicks);
    try {
      target.ensureAlive('it was being opened');
      target.#probeAccess();
    } catch (err) {
      target[Symbol.dispose]();
      throw err;
    }
    return target;
  }

  get pidfd(): number {
    return this.#pidfd;
  }

  /**
   * Checks that the process is still the one opened and has not exited.
   * @throws {CaptureError} EVANISHED, naming `step`
   */
  ensureAlive(step: string): void {
    let now: ProcStat;
    try {
      now = readStat(this.pid);
    } catch (err) {
      throw vanished(this.pid, step, err);
    }
    if (now.startTicks !== this.startTicks || 'ZX'.includes(now.state)) {
      throw vanished(this.pid, step);
    }
  }

  /**
   * A copy of the process's fd `fd` (pidfd_getfd, close-on-exec), owned by the caller; or
   * undefined when the process closed that fd in the meantime.
   * @throws {CaptureError} ECAPTURE_DENIED or EVANISHED
   */
  copyFd(fd: number): number | undefined {
    try {
      return pidfdGetfd(this.#pidfd, fd);
    } catch (err) {
      if (!(err instanceof SyscallError)) throw err;
      if (err.errnoName === 'EBADF') {
        this.ensureAlive(`its fd ${fd} was being copied`);
        return undefined;
      }
      throw this.#explain(err, `copy its fd ${fd}`);
    }
  }

  #probeAccess(): void {
    try {
      close(pidfdGetfd(this.#pidfd, PROBE_FD));
    } catch (err) {
      if (err instanceof SyscallError && err.errnoName === 'EBADF') return;
      throw this.#explain(err, 'copy its fds (pidfd_getfd)');
    }
  }

  #explain(err: unknown, what: string): unknown {
    if (!(err instanceof SyscallError)) return err;
    if (err.errnoName === 'EPERM') return denied(this.pid, what, err);
    if (err.errnoName === 'ESRCH') return vanished(this.pid, `trying to ${what}`, err);
    return err;
  }

  [Symbol.dispose](): void {
    if (this.#pidfd < 0) return;
    close(this.#pidfd);
    this.#pidfd = -1;
  }
}

function statOrNoProcess(pid: number): ProcStat {
  if (!Number.isInteger(pid) || pid <= 0 || pid > 0x3fff_ffff) {
    throw new CaptureError('ENOPROC', `Cannot capture pid '${pid}': not a pid`);
  }
  try {
    return readStat(pid);
  } catch (err) {
    throw noProcess(pid, err);
  }
}

function openPidfd(pid: number): number {
  try {
    return pidfdOpen(pid);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    if (err.errnoName === 'ESRCH' || err.errnoName === 'ENOENT') throw noProcess(pid, err);
    throw err;
  }
}
