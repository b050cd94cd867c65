/**
 * Sockets the agent makes on this node without another agent: the two ends of a connection
 * whose processes now share the node, dead sockets, and re-created listen sockets.
 *
 * Ownership: every fd returned is owned by the caller.
 */
import {
  accept,
  bind,
  close,
  connect,
  getSockName,
  listen,
  send,
  shutdown,
  socket,
  socketpair,
  SyscallError,
} from '../../ffi/index.ts';
import { EndpointError } from '../errors.ts';
import type { LocalPolicy } from '../config/types.ts';
import type { Endpoint } from '../model/types.ts';
import {
  type StateReport,
  applyAfterConnect,
  applyBeforeBind,
  growSendBuffer,
  towardPeer,
} from './socket-state.ts';

/**
 * Pairs two endpoints of this node: a loopback TCP connection (`keep-family`, the family of
 * the connect side) or an AF_UNIX stream socketpair (`unix-when-local`). Each side's drained
 * bytes are written into the other side, so they wait in its own receive queue. Returns
 * [fd for `connectSide`, fd for `acceptSide`].
 */
export function pairLocally(
  connectSide: Endpoint,
  acceptSide: Endpoint,
  policy: LocalPolicy,
): { fds: [number, number]; how: 'local-pair' | 'unix-pair'; reports: [StateReport, StateReport] } {
  const unix = policy === 'unix-when-local' || connectSide.family === 'unix';
  const [c, a] = unix ? socketpair('stream') : loopbackPair(connectSide);
  try {
    const family = unix ? 'unix' : connectSide.family;
    const reports: [StateReport, StateReport] = [
      applyAfterConnect(c, connectSide, family),
      applyAfterConnect(a, acceptSide, family),
    ];
    refillLocally(c, towardPeer(acceptSide.drained, connectSide));
    refillLocally(a, towardPeer(connectSide.drained, acceptSide));
    return { fds: [c, a], how: unix ? 'unix-pair' : 'local-pair', reports };
  } catch (err) {
    close(c);
    close(a);
    throw err;
  }
}

function loopbackPair(connectSide: Endpoint): [number, number] {
  const family = connectSide.family === 'inet6' ? 'inet6' : 'inet';
  const address = family === 'inet6' ? '::1' : '127.0.0.1';
  const listener = socket(family, 'stream');
  try {
    bind(listener, { family, address, port: 0 });
    listen(listener, 1);
    const c = socket(family, 'stream');
    try {
      applyBeforeBind(c, connectSide, family);
      connect(c, getSockName(listener));
      const accepted = accept(listener);
      if (!accepted)
        throw new EndpointError('ELOCAL_PAIR', 'Cannot pair locally: accept found no connection');
      return [c, accepted.fd];
    } catch (err) {
      close(c);
      throw err;
    }
  } finally {
    close(listener);
  }
}

/** Writes `bytes` into `fd` so that they wait in the peer's receive queue. */
function refillLocally(fd: number, bytes: Uint8Array): void {
  if (bytes.length === 0) return;
  growSendBuffer(fd, bytes.length);
  let off = 0;
  while (off < bytes.length) {
    const n = send(fd, bytes.subarray(off));
    if (n <= 0) {
      throw new EndpointError(
        'EREFILL',
        `Cannot refill ${bytes.length} drained bytes locally: the send buffer took only ${off}`,
      );
    }
    off += n;
  }
}

/**
 * A dead socket: one end of an AF_UNIX pair whose other end is closed, holding `drained`.
 * The process reads those bytes, then end-of-file; its writes fail with EPIPE.
 */
export function deadSocket(drained: Uint8Array): number {
  const [keep, other] = socketpair('stream');
  try {
    refillLocally(other, drained);
    shutdown(other, 'both');
  } catch (err) {
    close(keep);
    throw err;
  } finally {
    close(other);
  }
  return keep;
}

/**
 * Re-creates a listen socket with its family, port, backlog and options. A recorded address
 * that this node does not have is replaced by the wildcard address of the family (the port is
 * kept); a port that is taken is reported (ELISTEN_PORT_IN_USE), never changed.
 */
export function recreateListener(endpoint: Endpoint): { fd: number; report: StateReport } {
  const family = endpoint.family;
  const fd = socket(family, endpoint.type === 'seqpacket' ? 'seqpacket' : 'stream');
  try {
    const report = applyBeforeBind(fd, endpoint, family);
    bindRecorded(fd, endpoint);
    listen(fd, endpoint.backlog && endpoint.backlog > 0 ? endpoint.backlog : 128);
    applyAfterConnect(fd, endpoint, family, report);
    return { fd, report };
  } catch (err) {
    close(fd);
    throw err;
  }
}

function bindRecorded(fd: number, endpoint: Endpoint): void {
  const local = endpoint.local;
  if (!local)
    throw new EndpointError(
      'EMANIFEST',
      `Cannot re-create listener: endpoint has no local address`,
    );
  if (local.family === 'unix') {
    bind(fd, { family: 'unix', path: local.path, abstract: local.abstract });
    return;
  }
  const port = local.port ?? 0;
  const wildcard = local.family === 'inet6' ? '::' : '0.0.0.0';
  try {
    bind(fd, { family: local.family, address: local.address ?? wildcard, port });
  } catch (err) {
    if (err instanceof SyscallError && err.errnoName === 'EADDRINUSE') throw portInUse(port, err);
    if (!(err instanceof SyscallError) || err.errnoName !== 'EADDRNOTAVAIL') throw err;
    try {
      bind(fd, { family: local.family, address: wildcard, port });
    } catch (again) {
      if (again instanceof SyscallError && again.errnoName === 'EADDRINUSE')
        throw portInUse(port, again);
      throw again;
    }
  }
}

function portInUse(port: number, cause: Error): EndpointError {
  return new EndpointError(
    'ELISTEN_PORT_IN_USE',
    `Cannot re-create listener: port '${port}' is in use`,
    {
      cause,
    },
  );
}
