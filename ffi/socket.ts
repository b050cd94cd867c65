/**
 * Socket calls: creation, naming, connection, and the plain byte I/O rewire does on them.
 *
 * Ownership: every function that returns a new fd hands it to the caller, who closes it
 * (with `close`, or by holding it in an `OwnedFd` under `using`). Functions that take an fd
 * borrow it for the duration of the call.
 */
import { check, checkTolerating } from './call.ts';
import { AF, MSG, SOCK, SHUT } from './constants.ts';
import { Errno } from './errno.ts';
import { FfiArgumentError } from './errors.ts';
import { sym } from './libc.ts';
import { arch, Sizes } from './arch.ts';
import { decodeSockAddr, encodeSockAddr, formatSockAddr, type SockAddr } from './sockaddr.ts';

export type Family = 'inet' | 'inet6' | 'unix';
export type SocketType = 'stream' | 'seqpacket' | 'dgram';

const familyNumbers: Record<Family, number> = { inet: AF.INET, inet6: AF.INET6, unix: AF.UNIX };
const typeNumbers: Record<SocketType, number> = {
  stream: SOCK.STREAM,
  seqpacket: SOCK.SEQPACKET,
  dgram: SOCK.DGRAM,
};

/** Flags applied at creation: non-blocking and close-on-exec (default: close-on-exec only). */
export interface CreateFlags {
  nonblock?: boolean;
  cloexec?: boolean;
}

function typeWithFlags(type: SocketType, flags: CreateFlags): number {
  let value = typeNumbers[type];
  if (flags.nonblock) value |= SOCK.NONBLOCK;
  if (flags.cloexec ?? true) value |= SOCK.CLOEXEC;
  return value;
}

/** socket(2). Returns the new fd, owned by the caller. */
export function socket(
  family: Family,
  type: SocketType,
  flags: CreateFlags = {},
  protocol = 0,
): number {
  const ret = sym.socket(familyNumbers[family], typeWithFlags(type, flags), protocol);
  if (ret >= 0) return ret;
  return check(ret, { syscall: 'socket', detail: `${family}, ${type}` });
}

/** socketpair(2) (AF_UNIX). Returns both fds, owned by the caller. */
export function socketpair(type: SocketType, flags: CreateFlags = {}): [number, number] {
  const fds = new Int32Array(2);
  check(sym.socketpair(AF.UNIX, typeWithFlags(type, flags), 0, fds), {
    syscall: 'socketpair',
    detail: `unix, ${type}`,
  });
  return [fds[0]!, fds[1]!];
}

/** bind(2). */
export function bind(fd: number, addr: SockAddr): void {
  const { buf, len } = encodeSockAddr(addr);
  check(sym.bind(fd, buf, len), { syscall: 'bind', fd, detail: formatSockAddr(addr) });
}

/** listen(2). */
export function listen(fd: number, backlog: number): void {
  check(sym.listen(fd, backlog), { syscall: 'listen', fd, detail: `backlog ${backlog}` });
}

/**
 * accept4(2). Returns the new fd (owned by the caller) and the peer's address, or `null`
 * when the socket is non-blocking and no connection is waiting.
 */
export function accept(fd: number, flags: CreateFlags = {}): { fd: number; peer: SockAddr } | null {
  const buf = new Uint8Array(Sizes.sockaddrStorage);
  const len = new Uint32Array([buf.length]);
  let acceptFlags = 0;
  if (flags.nonblock) acceptFlags |= SOCK.NONBLOCK;
  if (flags.cloexec ?? true) acceptFlags |= SOCK.CLOEXEC;
  const ret = checkTolerating(sym.accept4(fd, buf, len, acceptFlags), { syscall: 'accept4', fd }, [
    Errno.EAGAIN,
  ]);
  if (ret < 0) return null;
  return { fd: ret, peer: decodeSockAddr(buf, len[0]!) };
}

/**
 * accept4(2) without the peer's address (ask `getPeerName` when it is wanted). Returns the
 * new fd (owned by the caller), or -1 when the socket is non-blocking and nothing is waiting.
 */
export function acceptFd(fd: number, flags: CreateFlags = {}): number {
  let acceptFlags = 0;
  if (flags.nonblock) acceptFlags |= SOCK.NONBLOCK;
  if (flags.cloexec ?? true) acceptFlags |= SOCK.CLOEXEC;
  const ret = checkTolerating(
    sym.accept4(fd, null, null, acceptFlags),
    { syscall: 'accept4', fd },
    [Errno.EAGAIN],
  );
  return ret < 0 ? -1 : ret;
}

/**
 * connect(2). Returns `true` when connected, `false` when a non-blocking connect is in
 * progress (EINPROGRESS): wait for the fd to be writable, then read `socketError`. `encoded`
 * may carry `encodeSockAddr(addr)` made once for many connects to the same address.
 */
export function connect(
  fd: number,
  addr: SockAddr,
  encoded: { buf: Uint8Array; len: number } = encodeSockAddr(addr),
): boolean {
  const ret = sym.connect(fd, encoded.buf, encoded.len);
  if (ret >= 0) return true;
  const context = { syscall: 'connect', fd, detail: formatSockAddr(addr) };
  return checkTolerating(ret, context, [Errno.EINPROGRESS, Errno.EAGAIN]) >= 0;
}

/** shutdown(2). */
export function shutdown(fd: number, how: 'read' | 'write' | 'both'): void {
  const value = how === 'read' ? SHUT.RD : how === 'write' ? SHUT.WR : SHUT.RDWR;
  check(sym.shutdown(fd, value), { syscall: 'shutdown', fd, detail: how });
}

/** close(2). The fd is gone afterwards even when close reports an error (Linux semantics). */
export function close(fd: number): void {
  check(sym.close(fd), { syscall: 'close', fd });
}

/** close_range(2) over [first, last], through syscall(2) so older glibc works too. */
export function closeRange(first: number, last: number, flags = 0): void {
  const nr = arch.sys.close_range;
  check(sym.syscall(nr, first, last, flags, 0), {
    syscall: 'close_range',
    detail: `${first}..${last}`,
  });
}

/** dup(2). Returns the new fd (close-on-exec clear), owned by the caller. */
export function dup(fd: number): number {
  return check(sym.dup(fd), { syscall: 'dup', fd });
}

/** dup3(2): makes `newFd` a copy of `fd`; `cloexec` sets O_CLOEXEC on it. */
export function dup3(fd: number, newFd: number, cloexec = false): number {
  return check(sym.dup3(fd, newFd, cloexec ? SOCK.CLOEXEC : 0), {
    syscall: 'dup3',
    fd,
    detail: `to fd ${newFd}`,
  });
}

/** getsockname(2). */
export function getSockName(fd: number): SockAddr {
  const buf = new Uint8Array(Sizes.sockaddrStorage);
  const len = new Uint32Array([buf.length]);
  check(sym.getsockname(fd, buf, len), { syscall: 'getsockname', fd });
  return decodeSockAddr(buf, len[0]!);
}

/** getpeername(2). */
export function getPeerName(fd: number): SockAddr {
  const buf = new Uint8Array(Sizes.sockaddrStorage);
  const len = new Uint32Array([buf.length]);
  check(sym.getpeername(fd, buf, len), { syscall: 'getpeername', fd });
  return decodeSockAddr(buf, len[0]!);
}

/**
 * send(2) with MSG_NOSIGNAL added. Returns the bytes sent, or -1 when a non-blocking socket
 * would block (EAGAIN).
 */
export function send(fd: number, data: Uint8Array, flags = 0): number {
  if (data.length === 0) return 0;
  const ret = checkTolerating(
    sym.send(fd, data, data.length, flags | MSG.NOSIGNAL),
    { syscall: 'send', fd },
    [Errno.EAGAIN],
  );
  return ret < 0 ? -1 : ret;
}

/**
 * recv(2) into `buf`. Returns the bytes read (0 at end-of-file), or -1 when a non-blocking
 * socket has nothing to read (EAGAIN).
 */
export function recv(fd: number, buf: Uint8Array, flags = 0): number {
  if (buf.length === 0) throw new FfiArgumentError(`recv(fd ${fd}): buffer is empty`);
  const ret = checkTolerating(sym.recv(fd, buf, buf.length, flags), { syscall: 'recv', fd }, [
    Errno.EAGAIN,
  ]);
  return ret < 0 ? -1 : ret;
}

/** read(2). Returns the bytes read, or -1 on EAGAIN. */
export function read(fd: number, buf: Uint8Array): number {
  const ret = checkTolerating(sym.read(fd, buf, buf.length), { syscall: 'read', fd }, [
    Errno.EAGAIN,
  ]);
  return ret < 0 ? -1 : ret;
}

/** write(2). Returns the bytes written, or -1 on EAGAIN. */
export function write(fd: number, data: Uint8Array): number {
  if (data.length === 0) return 0;
  const ret = checkTolerating(sym.write(fd, data, data.length), { syscall: 'write', fd }, [
    Errno.EAGAIN,
  ]);
  return ret < 0 ? -1 : ret;
}

/** pipe2(2). Returns [read end, write end], owned by the caller. */
export function pipe(flags: CreateFlags = {}): [number, number] {
  const fds = new Int32Array(2);
  check(sym.pipe2(fds, typeWithFlags('stream', flags) & ~SOCK.STREAM), { syscall: 'pipe2' });
  return [fds[0]!, fds[1]!];
}

/** An fd closed when the holder is disposed: `using sock = new OwnedFd(socket(...))`. */
export class OwnedFd implements Disposable {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0)
      throw new FfiArgumentError('Cannot use fd: it was already closed or released');
    return this.#fd;
  }

  /** Gives up ownership: the caller now closes the returned fd. */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    return fd;
  }

  [Symbol.dispose](): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    sym.close(fd);
  }
}
