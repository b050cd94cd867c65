/**
 * Socket diagnostics over netlink (NETLINK_SOCK_DIAG): what the kernel knows about a socket
 * that none of its fd's calls tell. For a unix socket, the inode of its peer and its queue
 * lengths (for a listener: pending connections and the backlog); for a TCP connection, the
 * inode of the socket at its other end when that end is on this host.
 *
 * Each call opens a netlink socket, asks for one socket by its exact identity (no dump), reads
 * the one answer and closes the netlink socket. Answers come from the network namespace of
 * the calling thread. Every buffer lives in the wrapper for the duration of its calls.
 */
import { check } from './call.ts';
import { AF, IPPROTO, MSG, SOCK } from './constants.ts';
import { Errno } from './errno.ts';
import { SyscallError } from './errors.ts';
import { sym } from './libc.ts';
import { parseIPv4, parseIPv6 } from './sockaddr.ts';

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const NLMSG_HDRLEN = 16;
const NO_COOKIE = 0xffff_ffff;

/** unix_diag_req.udiag_show bits and the attributes they bring. */
const UDIAG_SHOW_PEER = 0x04;
const UDIAG_SHOW_RQLEN = 0x10;
const UNIX_DIAG_PEER = 2;
const UNIX_DIAG_RQLEN = 4;

/** struct unix_diag_msg is 16 bytes; struct inet_diag_msg puts the inode at offset 68. */
const UNIX_DIAG_MSG_BYTES = 16;
const INET_DIAG_INODE_OFFSET = 68;
const INET_DIAG_STATE_OFFSET = 1;
const TCP_LISTEN_STATE = 10;

/** What sock_diag reports about one unix socket. */
export interface UnixDiag {
  /** The inode of the connected peer socket; absent when not connected. */
  peerInode?: number;
  /**
   * Receive-queue bytes (for a listener: connections waiting to be accepted) and send-queue
   * bytes (for a listener: its backlog), when reported.
   */
  rqueue?: number;
  wqueue?: number;
}

/**
 * Asks sock_diag about the unix socket with inode `inode`. Returns undefined when the kernel
 * does not know it in this network namespace (closed since, or another namespace's).
 * @throws {SyscallError} when netlink itself fails (e.g. no unix_diag support: ENOENT is read
 *   as "unknown socket", other errors are thrown)
 */
export function unixDiag(inode: number): UnixDiag | undefined {
  const req = new Uint8Array(24);
  const view = new DataView(req.buffer);
  req[0] = AF.UNIX;
  view.setUint32(4, 0xffff_ffff, true); // every state
  view.setUint32(8, inode, true);
  view.setUint32(12, UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN, true);
  view.setUint32(16, NO_COOKIE, true);
  view.setUint32(20, NO_COOKIE, true);

  const answer = exchange(req, `unix inode ${inode}`);
  if (answer === undefined) return undefined;
  return parseUnixAttributes(answer.subarray(UNIX_DIAG_MSG_BYTES));
}

function parseUnixAttributes(attrs: Uint8Array): UnixDiag {
  const out: UnixDiag = {};
  const view = new DataView(attrs.buffer, attrs.byteOffset, attrs.byteLength);
  for (let at = 0; at + 4 <= attrs.length;) {
    const len = view.getUint16(at, true);
    const type = view.getUint16(at + 2, true);
    if (len < 4) break;
    if (type === UNIX_DIAG_PEER && len >= 8) out.peerInode = view.getUint32(at + 4, true);
    if (type === UNIX_DIAG_RQLEN && len >= 12) {
      out.rqueue = view.getUint32(at + 4, true);
      out.wqueue = view.getUint32(at + 8, true);
    }
    at += (len + 3) & ~3;
  }
  return out;
}

/** One end of a TCP connection as text addresses, the way getsockname reports them. */
export interface TcpEnd {
  family: 'inet' | 'inet6';
  address: string;
  port: number;
}

/**
 * The inode of the TCP socket on this host whose local end is `local` and whose remote end is
 * `remote`, or undefined when there is none (the other end is on another host, or closed).
 * A listener that would take a new connection on `local` is not an answer: only a connected
 * socket with exactly those two ends is. Inode 0 (a socket no process holds any more) reads as
 * undefined too.
 */
export function tcpSocketInode(local: TcpEnd, remote: TcpEnd): number | undefined {
  const req = new Uint8Array(56);
  const view = new DataView(req.buffer);
  req[0] = local.family === 'inet' ? AF.INET : AF.INET6;
  req[1] = IPPROTO.TCP;
  view.setUint32(4, 0xffff_ffff, true); // every state
  view.setUint16(8, local.port, false);
  view.setUint16(10, remote.port, false);
  req.set(addressBytes(local), 12);
  req.set(addressBytes(remote), 28);
  view.setUint32(48, NO_COOKIE, true);
  view.setUint32(52, NO_COOKIE, true);

  const detail = `tcp ${local.address}:${local.port} <- ${remote.address}:${remote.port}`;
  const answer = exchange(req, detail);
  if (answer === undefined || answer.length < INET_DIAG_INODE_OFFSET + 4) return undefined;
  if (answer[INET_DIAG_STATE_OFFSET] === TCP_LISTEN_STATE) return undefined;
  const answerView = new DataView(answer.buffer, answer.byteOffset, answer.byteLength);
  if (answerView.getUint16(6, false) !== remote.port) return undefined;
  const inode = answerView.getUint32(INET_DIAG_INODE_OFFSET, true);
  return inode === 0 ? undefined : inode;
}

function addressBytes(end: TcpEnd): Uint8Array {
  return end.family === 'inet' ? parseIPv4(end.address) : parseIPv6(end.address);
}

/**
 * Sends one SOCK_DIAG_BY_FAMILY request and returns the payload of the answer (after the
 * netlink header), or undefined when the kernel answers ENOENT (no such socket).
 */
function exchange(request: Uint8Array, detail: string): Uint8Array | undefined {
  const nl = check(sym.socket(AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG), {
    syscall: 'socket',
    detail: 'netlink, sock_diag',
  });
  try {
    const message = new Uint8Array(NLMSG_HDRLEN + request.length);
    const header = new DataView(message.buffer);
    header.setUint32(0, message.length, true);
    header.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
    header.setUint16(6, NLM_F_REQUEST, true);
    header.setUint32(8, 1, true);
    message.set(request, NLMSG_HDRLEN);
    check(sym.send(nl, message, message.length, 0), { syscall: 'send', fd: nl, detail });

    const answer = new Uint8Array(8192);
    const n = check(sym.recv(nl, answer, answer.length, MSG.DONTWAIT), {
      syscall: 'recv',
      fd: nl,
      detail,
    });
    return payloadOf(answer.subarray(0, n), detail, nl);
  } finally {
    sym.close(nl);
  }
}

function payloadOf(reply: Uint8Array, detail: string, fd: number): Uint8Array | undefined {
  const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  if (reply.length < NLMSG_HDRLEN) return undefined;
  const length = Math.min(view.getUint32(0, true), reply.length);
  if (view.getUint16(4, true) !== NLMSG_ERROR) return reply.subarray(NLMSG_HDRLEN, length);

  const errno = -view.getInt32(NLMSG_HDRLEN, true);
  if (errno === 0 || errno === Errno.ENOENT) return undefined;
  throw new SyscallError({ syscall: 'sock_diag', fd, detail }, errno);
}
