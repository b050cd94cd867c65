/**
 * Freezing a process for a drain, and resuming it: SIGSTOP and SIGCONT sent through its pidfd,
 * so that a signal can never reach another process that reused the pid.
 *
 * A process that was already stopped when the drain began is left stopped (`wasStopped`), and
 * the caller does not resume it. Known shortcoming: a stop by signal is visible to the parent
 * (waitpid with WUNTRACED, SIGCHLD with CLD_STOPPED; a shell reports the job as stopped). The
 * cgroup v2 freezer would hide it, but rewire does not use it yet.
 */
import { getpid, pidfdSendSignal, SIG, SyscallError } from '../../ffi/index.ts';
import { CaptureError, denied, vanished } from './errors.ts';
import { threadStates } from './proc.ts';

/** How long a freeze may take before it is given up (every thread must reach the stop). */
export const FREEZE_DEADLINE_MS = 2000;

/** Whether every thread is stopped (T or t) or gone (Z, X). */
function allStopped(pid: number): boolean {
  const states = threadStates(pid);
  return states.length > 0 && states.every((s) => 'TtZX'.includes(s));
}

/**
 * Stops the process and waits until all its threads are stopped.
 * @returns whether it was stopped already (then no signal was sent)
 * @throws {CaptureError} ECAPTURE_DENIED when the signal is not permitted, EVANISHED when the
 *   process exits, EFREEZE when it is the calling process or its threads do not all stop
 *   within the deadline (it is then continued again)
 */
export async function freeze(
  pidfd: number,
  pid: number,
  deadlineMs = FREEZE_DEADLINE_MS,
): Promise<{ wasStopped: boolean }> {
  if (pid === getpid()) {
    throw new CaptureError('EFREEZE', `Cannot freeze pid '${pid}': it is the capturing process`);
  }
  if (allStopped(pid)) return { wasStopped: true };

  signal(pidfd, pid, SIG.STOP, 'stop it');
  const deadline = Date.now() + deadlineMs;
  for (let wait = 1; !allStopped(pid); wait = Math.min(wait * 2, 20)) {
    if (Date.now() >= deadline) {
      signal(pidfd, pid, SIG.CONT, 'continue it after a failed freeze');
      throw new CaptureError(
        'EFREEZE',
        `Cannot freeze pid '${pid}': its threads did not all stop within ${deadlineMs} ms (one may be in uninterruptible sleep); it was continued`,
      );
    }
    await Bun.sleep(wait);
  }
  return { wasStopped: false };
}

/**
 * Continues a stopped process (SIGCONT through its pidfd).
 * @throws {CaptureError} ECAPTURE_DENIED or EVANISHED
 */
export function resume(pidfd: number, pid: number): void {
  signal(pidfd, pid, SIG.CONT, 'continue it');
}

function signal(pidfd: number, pid: number, sig: number, what: string): void {
  try {
    pidfdSendSignal(pidfd, sig);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    if (err.errnoName === 'EPERM') throw denied(pid, `signal it to ${what}`, err);
    if (err.errnoName === 'ESRCH') throw vanished(pid, `trying to ${what}`, err);
    throw err;
  }
}
