/**
 * Re-homing (SPEC §3.5): a connection whose peer was a parent daemon of a node that departed,
 * a daemon that was not restarted anywhere, is given to the parent daemon of the same job on
 * the node where the process now runs. That daemon keeps its control session open and receives
 * the new connection on it while it runs.
 *
 * The daemon's end carries the characteristics of the daemon's other sockets of the same kind:
 * they are measured from a sibling socket in the running daemon (pidfd_getfd), never made up.
 */
import { AF, close, pidfdGetfd, pidfdOpen, socketKind } from '../../ffi/index.ts';
import type { Endpoint, EndpointId, Manifest } from '../model/types.ts';
import { measureState } from './socket-state.ts';

/** A parent daemon of this node with an open control session. */
export interface DaemonSession {
  job: string;
  /** Its manifest as restored (with its pid now). */
  manifest: Manifest;
  /**
   * Hands the daemon a new connection; the session owns `fd` from then on. Returns false when
   * the session is gone (the caller still owns `fd`).
   */
  deliver(connection: { id: EndpointId; peer: EndpointId; fd: number }): boolean;
}

/** Connection numbers of re-homed endpoints start here, clear of recorded ones. */
export const REHOMED_CONN_BASE = 0x4000_0000;

/**
 * The daemon's sockets most like the one it would have had for `rankEnd`'s connection, best
 * first: same family, stream, the opposite role of the rank's, then any other connected one.
 */
export function siblingsOf(daemon: Manifest, rankEnd: Endpoint): Endpoint[] {
  const role = rankEnd.role === 'connect' ? 'accept' : 'connect';
  const candidates = daemon.endpoints.filter(
    (e) =>
      e.family === rankEnd.family && e.type === 'stream' && e.fds.length > 0 && e.role !== 'listen',
  );
  return [
    ...candidates.filter((e) => e.role === role),
    ...candidates.filter((e) => e.role !== role),
  ];
}

/**
 * The endpoint the daemon gets: the opposite role of the rank's, and the options and fcntl
 * state read now from a sibling socket in the running daemon (none when it has no such socket).
 */
export function daemonEndpoint(daemon: Manifest, rankEnd: Endpoint, conn: number): Endpoint {
  const measured = measureSibling(daemon, rankEnd);
  return {
    id: { process: daemon.process, conn },
    peer: rankEnd.id,
    role: rankEnd.role === 'connect' ? 'accept' : 'connect',
    family: rankEnd.family,
    type: 'stream',
    protocol: rankEnd.protocol,
    fds: [],
    options: measured?.options ?? [],
    fcntl: measured?.fcntl,
    drained: new Uint8Array(0),
  };
}

/**
 * Reads the state of the first candidate sibling that is, in the running daemon, a connected
 * socket of the rank's family (a sibling delivered dead is an AF_UNIX socket and is passed
 * over). Undefined when there is none, or the daemon cannot be read.
 */
function measureSibling(daemon: Manifest, rankEnd: Endpoint) {
  let pidfd: number;
  try {
    pidfd = pidfdOpen(daemon.pid);
  } catch {
    return undefined;
  }
  try {
    for (const sibling of siblingsOf(daemon, rankEnd)) {
      const measured = measureIfSameKind(pidfd, sibling.fds[0]!, rankEnd.family);
      if (measured) return measured;
    }
    return undefined;
  } finally {
    close(pidfd);
  }
}

function measureIfSameKind(pidfd: number, fd: number, family: Endpoint['family']) {
  let copy: number;
  try {
    copy = pidfdGetfd(pidfd, fd);
  } catch {
    // The daemon closed that socket since.
    return undefined;
  }
  try {
    const kind = socketKind(copy);
    if (kind.domain !== AF[familyKey[family]] || kind.listening) return undefined;
    return measureState(copy, family);
  } finally {
    close(copy);
  }
}

const familyKey = { inet: 'INET', inet6: 'INET6', unix: 'UNIX' } as const;
