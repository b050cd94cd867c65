/**
 * rewire's error hierarchy above the libc layer. Every class carries a stable string `code`
 * (the same in HTTP responses, CLI exit paths and logs); `RewireError` and `SyscallError`
 * come from ffi/errors.ts.
 */
import { RewireError } from '../ffi/errors.ts';

export { RewireError, SyscallError } from '../ffi/errors.ts';

/** A wait passed its deadline. */
export class DeadlineError extends RewireError {
  override name = 'DeadlineError';
  constructor(message: string) {
    super('EDEADLINE', message);
  }
}

/** A peer agent broke the protocol: bad frame, unexpected message, closed mid-handshake. */
export class ProtocolError extends RewireError {
  override name = 'ProtocolError';
  constructor(message: string, code = 'EPROTOCOL') {
    super(code, message);
  }
}

/** Mutual authentication with a peer agent failed. */
export class AuthError extends RewireError {
  override name = 'AuthError';
  constructor(message: string) {
    super('EAUTH', message);
  }
}

/**
 * An endpoint could not be restored. `code` says why, e.g. EUNKNOWN_ENDPOINT,
 * EPEER_CHANGED, EPEER_UNREACHABLE, EPEER_GONE, ELISTEN_PORT_IN_USE, EREFUSED.
 */
export class EndpointError extends RewireError {
  override name = 'EndpointError';
}

/** A wait was cancelled by the operator or because its restore ended. */
export class CancelledError extends RewireError {
  override name = 'CancelledError';
  constructor(message: string) {
    super('ECANCELLED', message);
  }
}

/** Whether `err` is a RewireError with `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof RewireError && err.code === code;
}
