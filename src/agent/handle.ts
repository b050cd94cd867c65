/**
 * What the control API and the CLI see of a running agent: read models (plain JSON-ready
 * objects, ids as decimal strings) and the few actions an operator takes. The agent
 * implements it; the Hono API and the CLI use nothing else.
 */
import type { ClusterMapView } from '../capture/book.ts';
import type { CaptureJson } from '../capture/view.ts';
import type { HostPort } from '../config/types.ts';
import type { Manifest, Placement } from '../model/types.ts';

export interface NodeView {
  nodeId: string;
  name: string;
  advertise: HostPort;
  version: string;
  startedAt: string;
  placementVersion: string | null;
  localPolicy: string;
}

export type PeerState = 'unknown' | 'reachable' | 'unreachable' | 'departed';

export interface PeerView {
  nodeId: string;
  name: string | undefined;
  address: string;
  port: number;
  state: PeerState;
  lastSeen: string | undefined;
  lastError: string | undefined;
}

export type EndpointState = 'pending' | 'live' | 'dead' | 'failed';

export interface EndpointProgress {
  id: string;
  peer: string | undefined;
  role: string;
  state: EndpointState;
  /** remote, local-pair, unix-pair, listen, rehomed, dead */
  how: string | undefined;
  code: string | undefined;
  message: string | undefined;
}

export type RestoreState = 'running' | 'done' | 'failed' | 'cancelled';

export interface RestoreView {
  id: string;
  process: string;
  executable: string;
  pid: number;
  state: RestoreState;
  startedAt: string;
  finishedAt: string | undefined;
  placementVersion: string | null;
  counts: { pending: number; live: number; dead: number; failed: number };
  endpoints: EndpointProgress[];
}

export interface ConnectionView {
  endpoint: string;
  peer: string | undefined;
  process: string;
  executable: string;
  pid: number;
  state: 'live' | 'dead';
  how: string;
  fds: number[];
  localNode: string;
  peerNode: string | undefined;
  localBirthNode: string;
  peerBirthNode: string | undefined;
  sameNode: boolean;
  restoreId: string;
}

export interface ConnectionFilter {
  process?: string;
  node?: string;
  state?: string;
}

export interface HostEntryView {
  remoteNode: string;
  fd: number;
  endpoint: string;
  peer: string;
  peerBirthNode: string;
}

export interface HostTableView {
  process: string;
  executable: string;
  pid: number;
  entries: HostEntryView[];
}

/** The running agent, as the API and CLI use it. Methods throw RewireError subclasses. */
export interface AgentHandle {
  node(): NodeView;
  peers(): PeerView[];
  placement(): Placement | undefined;
  /** Replaces the placement; throws (code EPLACEMENT_STALE) when `version` is not newer. */
  setPlacement(placement: Placement): void;
  /**
   * Starts restoring a process's endpoints; the fds are held until the process claims them
   * over the control socket (`rewire exec`), or until the restore deadline.
   */
  startRestore(manifest: Manifest, options?: { deadlineMs?: number }): RestoreView;
  restores(): RestoreView[];
  /** Throws (code ERESTORE_NOT_FOUND) for an unknown id. */
  restore(id: string): RestoreView;
  /** Cancels a running restore; throws ERESTORE_NOT_FOUND for an unknown id. */
  cancelRestore(id: string): RestoreView;
  connections(filter?: ConnectionFilter): ConnectionView[];
  hosts(): HostTableView[];
  /**
   * Reads a process's sockets into a manifest (without draining) and keeps the capture for the
   * cluster map. Throws CaptureError (ENOPROC, EZOMBIE, ECAPTURE_DENIED, EVANISHED).
   */
  captureProcess(pid: number): Promise<CaptureJson>;
  /** Every agent's captures joined: which process on which node is connected to which. */
  clusterConnections(): Promise<ClusterMapView>;
  /** Prometheus text exposition of the agent's metrics. */
  metricsText(): string;
  /** Whether the agent is ready (listeners up). */
  ready(): boolean;
}
