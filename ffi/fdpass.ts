/**
 * Passing file descriptors over AF_UNIX sockets (sendmsg/recvmsg with SCM_RIGHTS) and the
 * peer's credentials (SO_PEERCRED).
 *
 * Ownership: `sendFds` borrows the fds (the sender still closes its own copies); `recvFds`
 * returns new fds owned by the caller. On MSG_CTRUNC the fds that did arrive are closed before
 * the error is thrown, so a short control buffer never leaks descriptors.
 *
 * The kernel takes at most SCM_MAX_FD (253) fds in one message; `sendFdBatches` and
 * `recvFdBatches` move any number in several messages.
 */
import { ptr } from 'bun:ffi';

import { Sizes } from './arch.ts';
import { check, checkTolerating } from './call.ts';
import { MSG, SCM_MAX_FD, SCM_RIGHTS, SO, SOL } from './constants.ts';
import { Errno } from './errno.ts';
import { FfiArgumentError, TruncatedControlError } from './errors.ts';
import { sym } from './libc.ts';

/** CMSG_SPACE for `count` fds. */
function cmsgSpace(count: number): number {
  return Sizes.cmsghdr + align8(count * 4);
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Everything that must stay alive while the kernel reads the struct: the msghdr points at the
 * iovec, which points at the data, and at the control buffer.
 */
interface MsgHdr {
  msg: Uint8Array;
  iov: Uint8Array;
  data: Uint8Array;
  control: Uint8Array;
}

/**
 * One msghdr and one iovec, reused by every call on this thread: sendmsg and recvmsg are
 * synchronous, and the kernel is done with both structs when the call returns. Written as
 * 32-bit halves (addresses fit in 53 bits) to avoid a DataView and BigInt per message.
 */
const scratch = new ArrayBuffer(Sizes.msghdr + Sizes.iovec);
const scratchMsg = new Uint8Array(scratch, 0, Sizes.msghdr);
const scratchIov = new Uint8Array(scratch, Sizes.msghdr, Sizes.iovec);
const words = new Uint32Array(scratch);
const iovAddress = ptr(scratchIov);

function put64(wordIndex: number, value: number): void {
  words[wordIndex] = value >>> 0;
  words[wordIndex + 1] = Math.floor(value / 2 ** 32);
}

function buildMsgHdr(data: Uint8Array, control: Uint8Array): MsgHdr {
  words.fill(0);
  const iov = Sizes.msghdr / 4;
  put64(iov, data.length > 0 ? ptr(data) : 0);
  put64(iov + 2, data.length);
  put64(4, iovAddress);
  put64(6, 1);
  if (control.length > 0) {
    put64(8, ptr(control));
    put64(10, control.length);
  }
  return { msg: scratchMsg, iov: scratchIov, data, control };
}

/**
 * Sends `data` (at least one byte) with `fds` attached (at most 253). Returns the bytes sent,
 * or -1 when a non-blocking socket would block. Throws for more than 253 fds.
 */
export function sendFds(sock: number, fds: readonly number[], data: Uint8Array, flags = 0): number {
  if (fds.length > SCM_MAX_FD) {
    throw new FfiArgumentError(
      `Cannot send ${fds.length} fds in one message: the kernel takes at most ${SCM_MAX_FD}; use sendFdBatches`,
    );
  }
  if (data.length === 0)
    throw new FfiArgumentError('Cannot send fds: at least one data byte is needed');
  const control = new Uint8Array(fds.length > 0 ? cmsgSpace(fds.length) : 0);
  if (fds.length > 0) {
    const view = new DataView(control.buffer);
    view.setBigUint64(0, BigInt(Sizes.cmsghdr + fds.length * 4), true);
    view.setInt32(8, SOL.SOCKET, true);
    view.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((fd, i) => view.setInt32(Sizes.cmsghdr + i * 4, fd, true));
  }
  const hdr = buildMsgHdr(data, control);
  const ret = checkTolerating(
    sym.sendmsg(sock, hdr.msg, flags | MSG.NOSIGNAL),
    { syscall: 'sendmsg', fd: sock, detail: `${fds.length} fds` },
    [Errno.EAGAIN],
  );
  return ret < 0 ? -1 : ret;
}

/** What one recvmsg delivered. `fds` are owned by the caller. */
export interface Received {
  /** The data bytes (a copy of the part of the buffer that was filled). */
  data: Uint8Array;
  fds: number[];
  /** msg_flags as returned (MSG_TRUNC when a datagram did not fit, ...). */
  flags: number;
}

export interface RecvFdsOptions {
  /** The most fds the control buffer has room for (default 253). */
  maxFds?: number;
  /** The size of the data buffer (default 4096). */
  maxBytes?: number;
  /** Set close-on-exec on the received fds (MSG_CMSG_CLOEXEC); default true. */
  cloexec?: boolean;
  /** Extra recvmsg flags, e.g. MSG_PEEK or MSG_DONTWAIT. */
  flags?: number;
}

/**
 * Receives one message and the fds attached to it. Returns null when a non-blocking socket has
 * nothing to read; `data` is empty at end-of-file. Throws TruncatedControlError on MSG_CTRUNC,
 * after closing the fds that arrived.
 */
export function recvFds(sock: number, options: RecvFdsOptions = {}): Received | null {
  const maxFds = options.maxFds ?? SCM_MAX_FD;
  const data = new Uint8Array(options.maxBytes ?? 4096);
  // CMSG_LEN, not CMSG_SPACE: with an odd maxFds the padding would make room for one fd more.
  const control = new Uint8Array(maxFds > 0 ? Sizes.cmsghdr + maxFds * 4 : 0);
  const hdr = buildMsgHdr(data, control);
  let flags = options.flags ?? 0;
  if (options.cloexec ?? true) flags |= MSG.CMSG_CLOEXEC;
  const ret = checkTolerating(sym.recvmsg(sock, hdr.msg, flags), { syscall: 'recvmsg', fd: sock }, [
    Errno.EAGAIN,
  ]);
  if (ret < 0) return null;
  const msgFlags = words[12]! | 0;
  const controlLength = words[10]! + words[11]! * 2 ** 32;
  const fds = controlLength > 0 ? parseRights(control, controlLength) : [];
  if (msgFlags & MSG.CTRUNC) {
    for (const fd of fds) sym.close(fd);
    throw new TruncatedControlError(sock, maxFds);
  }
  return { data: data.slice(0, ret), fds, flags: msgFlags };
}

function parseRights(control: Uint8Array, length: number): number[] {
  const fds: number[] = [];
  const view = new DataView(control.buffer);
  let off = 0;
  while (off + Sizes.cmsghdr <= length) {
    const len = Number(view.getBigUint64(off, true));
    if (len < Sizes.cmsghdr) break;
    const level = view.getInt32(off + 8, true);
    const type = view.getInt32(off + 12, true);
    if (level === SOL.SOCKET && type === SCM_RIGHTS) {
      const count = (len - Sizes.cmsghdr) / 4;
      for (let i = 0; i < count; i++) fds.push(view.getInt32(off + Sizes.cmsghdr + i * 4, true));
    }
    off += align8(len);
  }
  return fds;
}

/** The credentials of the process at the other end of an AF_UNIX socket, as of connect(). */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** SO_PEERCRED. */
export function getPeerCred(sock: number): PeerCred {
  const buf = new Uint8Array(Sizes.ucred);
  const len = new Uint32Array([buf.length]);
  check(sym.getsockopt(sock, SOL.SOCKET, SO.PEERCRED, buf, len), {
    syscall: 'getsockopt',
    fd: sock,
    detail: 'SOL_SOCKET, SO_PEERCRED',
  });
  const view = new DataView(buf.buffer);
  return {
    pid: view.getInt32(0, true),
    uid: view.getUint32(4, true),
    gid: view.getUint32(8, true),
  };
}

const BATCH_HEADER = 8;

/**
 * Sends any number of fds over a blocking socket in messages of at most 253, each carrying an
 * 8-byte header: the total count and the index of its first fd (little-endian u32s). Throws
 * FfiArgumentError when the socket would block rather than dropping a batch.
 */
export function sendFdBatches(sock: number, fds: readonly number[]): void {
  for (let first = 0; first === 0 || first < fds.length; first += SCM_MAX_FD) {
    const chunk = fds.slice(first, first + SCM_MAX_FD);
    const header = new Uint8Array(BATCH_HEADER);
    const view = new DataView(header.buffer);
    view.setUint32(0, fds.length, true);
    view.setUint32(4, first, true);
    if (sendFds(sock, chunk, header) !== BATCH_HEADER) {
      throw new FfiArgumentError(
        `Cannot send fd batch on fd ${sock}: the socket would block; sendFdBatches needs a blocking socket`,
      );
    }
    if (fds.length === 0) break;
  }
}

/**
 * Receives the fds that `sendFdBatches` sent, over a blocking socket. The fds are owned by the
 * caller; on any error the ones received so far are closed.
 */
export function recvFdBatches(sock: number): number[] {
  const fds: number[] = [];
  try {
    for (;;) {
      const got = recvFds(sock, { maxBytes: BATCH_HEADER });
      if (got === null || got.data.length < BATCH_HEADER) {
        for (const fd of got?.fds ?? []) sym.close(fd);
        throw new FfiArgumentError(
          `Cannot receive fd batch on fd ${sock}: the message ended early`,
        );
      }
      const view = new DataView(got.data.buffer);
      const total = view.getUint32(0, true);
      const first = view.getUint32(4, true);
      if (first !== fds.length) {
        for (const fd of got.fds) sym.close(fd);
        throw new FfiArgumentError(
          `Cannot receive fd batch: expected index ${fds.length}, got ${first}`,
        );
      }
      fds.push(...got.fds);
      if (fds.length >= total) return fds;
    }
  } catch (err) {
    for (const fd of fds) sym.close(fd);
    throw err;
  }
}
