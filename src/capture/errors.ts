/**
 * Why a capture was refused or cut short. Each reason has its own stable code, the same in
 * HTTP responses, CLI exit paths and logs:
 *
 * - ENOPROC: no process has that pid (or the pid is a thread's, not a process's);
 * - EZOMBIE: the process has exited and waits for its parent: it has no fds left;
 * - EVANISHED: the process exited (or its pid was reused) while it was being captured;
 * - ECAPTURE_DENIED: the caller may not trace the process (pidfd_getfd needs ptrace access);
 * - EFREEZE: the process could not be frozen for a drain, or resumed afterwards.
 */
import { RewireError } from '../errors.ts';

export type CaptureCode = 'ENOPROC' | 'EZOMBIE' | 'EVANISHED' | 'ECAPTURE_DENIED' | 'EFREEZE';

export class CaptureError extends RewireError {
  override name = 'CaptureError';
  declare readonly code: CaptureCode;

  constructor(code: CaptureCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** The process is not there: no such pid. */
export function noProcess(pid: number, cause?: unknown): CaptureError {
  return new CaptureError('ENOPROC', `Cannot capture pid '${pid}': no such process`, { cause });
}

/** The process exited, or its pid now names another process, part way through. */
export function vanished(pid: number, step: string, cause?: unknown): CaptureError {
  return new CaptureError(
    'EVANISHED',
    `Cannot capture pid '${pid}': the process exited while ${step}`,
    { cause },
  );
}

/** The caller lacks ptrace access to the process. */
export function denied(pid: number, step: string, cause?: unknown): CaptureError {
  return new CaptureError(
    'ECAPTURE_DENIED',
    `Cannot capture pid '${pid}': not permitted to ${step}: run as root or with ` +
      "CAP_SYS_PTRACE, or as the process's own user where ptrace is allowed " +
      '(kernel.yama.ptrace_scope 0)',
    { cause },
  );
}
