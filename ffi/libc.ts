/**
 * Every libc symbol rewire calls, declared once. Nothing outside `ffi/` imports this module:
 * the typed wrappers beside it are the only way in.
 *
 * Pointer arguments take a TypedArray (Bun passes its data pointer) or a raw address from
 * `ptr()`; the caller keeps the array alive for the duration of the call, which, as every
 * call here is synchronous, means holding a reference until the wrapper returns.
 *
 * Variadic functions (fcntl, ioctl, syscall) are declared with the fixed arguments rewire
 * passes; on x86_64 and aarch64 Linux integer and pointer variadic arguments travel in the
 * same registers as fixed ones.
 */
import { dlopen, FFIType, read } from 'bun:ffi';

const { i32, u32, i64_fast: i64, u64_fast: u64, ptr, void: none } = FFIType;

const libc = dlopen('libc.so.6', {
  __errno_location: { args: [], returns: ptr },
  socket: { args: [i32, i32, i32], returns: i32 },
  socketpair: { args: [i32, i32, i32, ptr], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, ptr, ptr, i32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  shutdown: { args: [i32, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  dup: { args: [i32], returns: i32 },
  dup3: { args: [i32, i32, i32], returns: i32 },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  getpeername: { args: [i32, ptr, ptr], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  fcntl: { args: [i32, i32, i64], returns: i32 },
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  sendmsg: { args: [i32, ptr, i32], returns: i64 },
  recvmsg: { args: [i32, ptr, i32], returns: i64 },
  send: { args: [i32, ptr, u64, i32], returns: i64 },
  recv: { args: [i32, ptr, u64, i32], returns: i64 },
  sendto: { args: [i32, ptr, u64, i32, ptr, u32], returns: i64 },
  read: { args: [i32, ptr, u64], returns: i64 },
  write: { args: [i32, ptr, u64], returns: i64 },
  pipe2: { args: [ptr, i32], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  epoll_create1: { args: [i32], returns: i32 },
  epoll_ctl: { args: [i32, i32, i32, ptr], returns: i32 },
  epoll_wait: { args: [i32, ptr, i32, i32], returns: i32 },
  syscall: { args: [i64, i64, i64, i64, i64], returns: i64 },
  execve: { args: [ptr, ptr, ptr], returns: i32 },
  getpid: { args: [], returns: i32 },
  getuid: { args: [], returns: u32 },
  getgid: { args: [], returns: u32 },
  _exit: { args: [i32], returns: none },
});

export const sym = libc.symbols;

/** The address of this thread's errno; fixed for the life of the thread. */
const errnoAddress = sym.__errno_location();

/**
 * This thread's errno. Read it in the same synchronous wrapper as the failed call, before
 * anything else can run.
 */
export function errno(): number {
  if (errnoAddress === null) return 0;
  return read.i32(errnoAddress, 0);
}
