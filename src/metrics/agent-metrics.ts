/**
 * The agent's metrics, named by Prometheus conventions. The agent records into them as it
 * works; the API's `/metrics` renders `registry.text()`.
 *
 * - `rewire_restores_total{result}`: restores finished, by result (done, partial, failed,
 *   cancelled)
 * - `rewire_endpoints_total{result}`: endpoints finished, by result (live, dead, failed)
 * - `rewire_handshake_duration_seconds`: connections offered to peer agents, from the offer to
 *   the peer's answer
 * - `rewire_peer_sessions_total{side}`: authenticated sessions with peer agents opened, by
 *   side (dialed, accepted); one session carries every connection between two agents
 * - `rewire_restore_duration_seconds`: restores, from start to the last endpoint finished
 * - `rewire_peers{state}`: peer agents by state (unknown, reachable, unreachable, departed)
 * - `rewire_fds_held`: restored fds held for processes that have not claimed them yet
 * - `rewire_build_info{version,arch}`: always 1
 */
import type { PeerState } from '../agent/handle.ts';
import { version as rewireVersion } from '../version.ts';
import { Counter, Gauge, Histogram, Registry } from './registry.ts';

export type RestoreResult = 'done' | 'partial' | 'failed' | 'cancelled';
export type EndpointResult = 'live' | 'dead' | 'failed';

const restoreResults: readonly RestoreResult[] = ['done', 'partial', 'failed', 'cancelled'];
const endpointResults: readonly EndpointResult[] = ['live', 'dead', 'failed'];

export interface AgentMetrics {
  registry: Registry;
  restores: Counter<'result'>;
  endpoints: Counter<'result'>;
  handshakeSeconds: Histogram;
  peerSessions: Counter<'side'>;
  restoreSeconds: Histogram;
  peers: Gauge<'state'>;
  fdsHeld: Gauge;
}

export const peerStates: readonly PeerState[] = ['unknown', 'reachable', 'unreachable', 'departed'];

/** A fresh registry with the agent's metrics and the build info. */
export function createAgentMetrics(version = rewireVersion, arch = process.arch): AgentMetrics {
  const registry = new Registry();
  registry
    .gauge<'version' | 'arch'>({
      name: 'rewire_build_info',
      help: 'Build of the running agent',
      labelNames: ['version', 'arch'],
    })
    .set({ version, arch }, 1);

  const metrics: AgentMetrics = {
    registry,
    restores: registry.counter({
      name: 'rewire_restores_total',
      help: 'Restores finished, by result',
      labelNames: ['result'],
    }),
    endpoints: registry.counter({
      name: 'rewire_endpoints_total',
      help: 'Endpoints finished, by result',
      labelNames: ['result'],
    }),
    handshakeSeconds: registry.histogram({
      name: 'rewire_handshake_duration_seconds',
      help: 'Time from offering a connection to a peer agent to its answer',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    peerSessions: registry.counter({
      name: 'rewire_peer_sessions_total',
      help: 'Authenticated sessions with peer agents opened, by side',
      labelNames: ['side'],
    }),
    restoreSeconds: registry.histogram({
      name: 'rewire_restore_duration_seconds',
      help: 'Time from the start of a restore to its last endpoint finished',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    }),
    peers: registry.gauge({
      name: 'rewire_peers',
      help: 'Peer agents, by state',
      labelNames: ['state'],
    }),
    fdsHeld: registry.gauge({
      name: 'rewire_fds_held',
      help: 'Restored fds held until their process claims them',
    }),
  };
  for (const result of restoreResults) metrics.restores.inc({ result }, 0);
  for (const result of endpointResults) metrics.endpoints.inc({ result }, 0);
  for (const side of ['dialed', 'accepted']) metrics.peerSessions.inc({ side }, 0);
  return metrics;
}
