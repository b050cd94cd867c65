/**
 * sd_notify(3) without libsystemd: one datagram of `KEY=VALUE` lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or an abstract name written with a leading `@`). systemd
 * sets it for services with `Type=notify`; `READY=1` tells it that start-up has finished.
 */
import { check } from './call.ts';
import { MSG } from './constants.ts';
import { FfiArgumentError } from './errors.ts';
import { sym } from './libc.ts';
import { encodeSockAddr, formatSockAddr, type UnixAddress } from './sockaddr.ts';
import { OwnedFd, socket } from './socket.ts';

/** The address that $NOTIFY_SOCKET names: `@name` is abstract, anything else a path. */
export function notifyAddress(name: string): UnixAddress {
  if (name.startsWith('@')) return { family: 'unix', abstract: name.slice(1) };
  if (!name.startsWith('/')) {
    throw new FfiArgumentError(
      `Cannot notify: NOTIFY_SOCKET '${name}' is neither a path nor @name`,
    );
  }
  return { family: 'unix', path: name };
}

/**
 * sendto(2) of `data` to `addr` on a datagram socket. Returns the bytes sent.
 * @throws {SyscallError} when the kernel refuses (e.g. ECONNREFUSED: nobody bound the name)
 */
export function sendTo(fd: number, data: Uint8Array, addr: UnixAddress): number {
  const { buf, len } = encodeSockAddr(addr);
  const detail = formatSockAddr(addr);
  return check(sym.sendto(fd, data, data.length, MSG.NOSIGNAL, buf, len), {
    syscall: 'sendto',
    fd,
    detail,
  });
}

/**
 * Sends `state` (e.g. `READY=1\nSTATUS=serving`) to the service manager. Returns false, doing
 * nothing, when $NOTIFY_SOCKET is not set (not started by systemd with Type=notify).
 * @throws {SyscallError} when the socket cannot be made or the datagram is refused
 * @throws {FfiArgumentError} when $NOTIFY_SOCKET is malformed
 */
export function sdNotify(
  state: string,
  env: Record<string, string | undefined> = process.env,
): boolean {
  const name = env.NOTIFY_SOCKET;
  if (name === undefined || name === '') return false;

  const addr = notifyAddress(name);
  using sock = new OwnedFd(socket('unix', 'dgram'));
  sendTo(sock.fd, new TextEncoder().encode(state), addr);
  return true;
}
