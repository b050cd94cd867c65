/**
 * The root of rewire's error hierarchy, and the error that every failed libc call raises.
 *
 * Every error rewire raises on purpose is a `RewireError` with a stable string `code` that
 * callers match on; the same codes appear in HTTP responses, CLI exit paths and logs. Later
 * modules extend the hierarchy with their own classes and codes.
 */
import { errnoName, errnoText } from './errno.ts';

/** Base class of every error rewire raises on purpose. `code` is stable across releases. */
export class RewireError extends Error {
  override name = 'RewireError';
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }

  /** A plain object for JSON responses and structured logs. */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message };
  }
}

/** What a failed call was doing, for the message and for matching. */
export interface SyscallContext {
  /** The libc function, e.g. `setsockopt`. */
  syscall: string;
  /** The file descriptor the call was made on, when there is one. */
  fd?: number;
  /** The option, e.g. `SOL_SOCKET, SO_SNDBUF`, or another short detail such as a path. */
  detail?: string;
}

/**
 * A libc call failed. Carries the call, the fd, the option and the errno, e.g.
 * `setsockopt(fd 12, SOL_SOCKET, SO_SNDBUF): EBADF (bad file descriptor)`.
 */
export class SyscallError extends RewireError {
  override name = 'SyscallError';
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;
  readonly fd: number | undefined;
  readonly detail: string | undefined;

  constructor(context: SyscallContext, errno: number) {
    super('ESYSCALL', SyscallError.format(context, errno));
    this.syscall = context.syscall;
    this.errno = errno;
    this.errnoName = errnoName(errno);
    this.fd = context.fd;
    this.detail = context.detail;
  }

  private static format(context: SyscallContext, errno: number): string {
    const args: string[] = [];
    if (context.fd !== undefined) args.push(`fd ${context.fd}`);
    if (context.detail !== undefined) args.push(context.detail);
    return `${context.syscall}(${args.join(', ')}): ${errnoName(errno)} (${errnoText(errno)})`;
  }

  override toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      syscall: this.syscall,
      errno: this.errnoName,
      fd: this.fd,
    };
  }
}

/**
 * A control message arrived truncated (MSG_CTRUNC): the kernel dropped file descriptors
 * because the receive buffer was too small. The fds that did arrive have been closed.
 */
export class TruncatedControlError extends RewireError {
  override name = 'TruncatedControlError';

  constructor(fd: number, capacity: number) {
    super(
      'ECTRUNC',
      `recvmsg(fd ${fd}): control message truncated: more than ${capacity} fds were sent; ` +
        'the fds that arrived were closed',
    );
  }
}

/** Bad input to an ffi wrapper, found before any call was made. */
export class FfiArgumentError extends RewireError {
  override name = 'FfiArgumentError';

  constructor(message: string) {
    super('EARGUMENT', message);
  }
}
