/**
 * Reading one socket of the captured process, through a copy of its fd: what kind of socket it
 * is, its addresses, every recordable option and the fcntl state (`measureState`), its TCP
 * state, queue lengths and backlog, and for a unix socket the inode of its peer. The copy is
 * borrowed, not closed.
 *
 * A socket the manifest cannot describe (a datagram or netlink socket, a TCP socket that is
 * neither listening nor connected) comes back as `unsupported` with the reason.
 */
import {
  AF,
  getPeerName,
  getSockName,
  IPPROTO,
  queueLengths,
  SOCK,
  socketKind,
  SyscallError,
  tcpInfo,
  unixDiag,
  type SockAddr,
} from '../../ffi/index.ts';
import type { Address, Family, FcntlState, SocketOption, SocketType } from '../model/types.ts';
import { measureState } from '../rewire/socket-state.ts';

/** A socket the manifest can hold, as read from the process. */
export interface DescribedSocket {
  kind: 'socket';
  inode: number;
  family: Family;
  type: SocketType;
  protocol: number;
  listening: boolean;
  local?: Address;
  remote?: Address;
  backlog?: number;
  options: SocketOption[];
  fcntl: FcntlState;
  /** TCP only: the state as tcp_info reports it. */
  tcpState?: string;
  /** SIOCINQ and SIOCOUTQ (connected sockets). */
  queues?: { receive: number; send: number };
  /** Unix only: the peer socket's inode, from sock_diag. */
  peerInode?: number;
}

/** A socket the manifest cannot hold, and why. */
export interface UnsupportedSocket {
  kind: 'unsupported';
  inode: number;
  family: string;
  type: string;
  reason: string;
}

const FAMILIES: Record<number, Family> = {
  [AF.INET]: 'inet',
  [AF.INET6]: 'inet6',
  [AF.UNIX]: 'unix',
};
const TYPES: Record<number, SocketType> = {
  [SOCK.STREAM]: 'stream',
  [SOCK.SEQPACKET]: 'seqpacket',
};
const TYPE_NAMES: Record<number, string> = { [SOCK.DGRAM]: 'dgram', 3: 'raw', 4: 'rdm' };

/** Reads the socket behind `fd` (a copy of the process's fd; borrowed). */
export function describeSocket(fd: number, inode: number): DescribedSocket | UnsupportedSocket {
  const kind = socketKind(fd);
  const family = FAMILIES[kind.domain];
  const type = TYPES[kind.type];
  const typeName = type ?? TYPE_NAMES[kind.type] ?? `type ${kind.type}`;
  const unsupported = (reason: string): UnsupportedSocket => ({
    kind: 'unsupported',
    inode,
    family: family ?? `family ${kind.domain}`,
    type: typeName,
    reason,
  });
  if (family === undefined) return unsupported('only inet, inet6 and unix sockets are captured');
  if (type === undefined) return unsupported('only stream and seqpacket sockets are captured');

  const remote = kind.listening ? undefined : peerAddress(fd);
  if (!kind.listening && remote === undefined) {
    return unsupported('neither listening nor connected: nothing to restore');
  }
  const state = measureState(fd, family);
  const out: DescribedSocket = {
    kind: 'socket',
    inode,
    family,
    type,
    protocol: kind.protocol,
    listening: kind.listening,
    local: toAddress(getSockName(fd)),
    options: state.options,
    fcntl: state.fcntl,
  };
  if (remote) out.remote = remote;
  addKernelView(fd, out);
  return out;
}

/** The peer's address, or undefined when the socket is not connected (ENOTCONN). */
function peerAddress(fd: number): Address | undefined {
  try {
    return toAddress(getPeerName(fd));
  } catch (err) {
    if (err instanceof SyscallError && err.errnoName === 'ENOTCONN') return undefined;
    throw err;
  }
}

/** TCP state and backlog, queue lengths, and a unix socket's peer and backlog. */
function addKernelView(fd: number, s: DescribedSocket): void {
  if (s.family !== 'unix' && s.protocol === IPPROTO.TCP) {
    const info = tcpInfo(fd);
    s.tcpState = info.state;
    if (info.backlog !== undefined) s.backlog = info.backlog;
  } else if (s.family === 'unix') {
    const diag = diagnose(s.inode);
    if (diag?.peerInode) s.peerInode = diag.peerInode;
    if (s.listening && diag?.wqueue !== undefined) s.backlog = diag.wqueue;
  }
  if (s.listening) return;
  try {
    const q = queueLengths(fd);
    s.queues = { receive: q.inq, send: q.outq };
  } catch {
    // A socket in a state without queues (closed by the peer and reset): nothing to report.
  }
}

/** sock_diag's view of a unix socket; undefined where the kernel has no unix_diag. */
function diagnose(inode: number): ReturnType<typeof unixDiag> {
  try {
    return unixDiag(inode);
  } catch {
    return undefined;
  }
}

/** An ffi address as the model's Address. */
export function toAddress(a: SockAddr): Address {
  return { ...a };
}
