/**
 * The one way a wrapper turns a libc return value into a result or a `SyscallError`: a
 * negative return reads errno at once, in the same synchronous call, and throws.
 */
import { SyscallError, type SyscallContext } from './errors.ts';
import { errno } from './libc.ts';

/**
 * Returns `ret` (a 64-bit ssize_t return may arrive as a bigint) when it is not negative;
 * otherwise throws the SyscallError for `context`.
 */
export function check(ret: number | bigint, context: SyscallContext): number {
  if (ret >= 0) return Number(ret);
  throw new SyscallError(context, errno());
}

/**
 * Like `check`, but returns `-errno` instead of throwing when errno is one of `tolerated`,
 * for calls where EAGAIN or EINPROGRESS is an expected answer rather than a failure.
 */
export function checkTolerating(
  ret: number | bigint,
  context: SyscallContext,
  tolerated: readonly number[],
): number {
  if (ret >= 0) return Number(ret);
  const err = errno();
  if (tolerated.includes(err)) return -err;
  throw new SyscallError(context, err);
}
