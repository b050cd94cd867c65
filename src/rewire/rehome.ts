/**
 * Re-homing (SPEC §3.5): a connection whose peer was a parent daemon of a node that departed,
 * a daemon that was not restarted anywhere, is given to the parent daemon of the same job on
 * the node where the process now runs. That daemon keeps its control session open and receives
 * the new connection on it while it runs.
 *
 * The daemon's end carries the characteristics of the daemon's other sockets of the same kind:
 * they are measured from a sibling socket in the running daemon (pidfd_getfd), never made up.
 */
import { close, pidfdGetfd, pidfdOpen } from '../../ffi/index.ts';
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

/** The daemon's socket most like the one it would have had for `rankEnd`'s connection. */
export function siblingOf(daemon: Manifest, rankEnd: Endpoint): Endpoint | undefined {
  const role = rankEnd.role === 'connect' ? 'accept' : 'connect';
  const candidates = daemon.endpoints.filter(
    (e) => e.family === rankEnd.family && e.type === 'stream' && e.fds.length > 0,
  );
  return candidates.find((e) => e.role === role) ?? candidates.find((e) => e.role !== 'listen');
}

/**
 * The endpoint the daemon gets: the opposite role of the rank's, and the options and fcntl
 * state read now from `sibling` in the running daemon (none when it has no such socket).
 */
export function daemonEndpoint(daemon: Manifest, rankEnd: Endpoint, conn: number): Endpoint {
  const sibling = siblingOf(daemon, rankEnd);
  const measured = sibling
    ? measureInProcess(daemon.pid, sibling.fds[0]!, rankEnd.family)
    : undefined;
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

function measureInProcess(pid: number, fd: number, family: Endpoint['family']) {
  const pidfd = pidfdOpen(pid);
  try {
    const copy = pidfdGetfd(pidfd, fd);
    try {
      return measureState(copy, family);
    } finally {
      close(copy);
    }
  } catch {
    // The daemon closed that socket since: its new connection gets the defaults.
    return undefined;
  } finally {
    close(pidfd);
  }
}
