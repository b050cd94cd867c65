/**
 * The manifest model (SPEC §4) as the agent holds it in memory. The JSON form (files, HTTP)
 * is validated into these types by `schema.ts`; the protobuf form (wire) is converted by
 * `codec.ts`. 64-bit ids are bigints; byte strings are Uint8Arrays.
 */

/** A process, as DMTCP's UniquePid: it does not change when the process moves. */
export interface ProcessId {
  hostId: bigint;
  pid: number;
  birthTime: bigint;
  generation: number;
}

/** One end of a connection, as DMTCP's ConnectionIdentifier. */
export interface EndpointId {
  process: ProcessId;
  conn: number;
}

export type Role = 'connect' | 'accept' | 'listen';
export type Family = 'inet' | 'inet6' | 'unix';
export type SocketType = 'stream' | 'seqpacket';

export interface Address {
  family: Family;
  /** inet/inet6: the IP address. */
  address?: string;
  port?: number;
  /** unix: a filesystem name. */
  path?: string;
  /** unix: an abstract name without the leading NUL. */
  abstract?: string;
  scopeId?: number;
  flowinfo?: number;
}

/** A socket option as getsockopt returned it; replayed as recorded. */
export interface SocketOption {
  level: number;
  name: number;
  value: Uint8Array;
  /** The C name, e.g. `SO_SNDBUF`, when rewire knows it. */
  label?: string;
}

export interface FcntlState {
  /** F_GETFL; O_NONBLOCK and O_ASYNC are replayed. */
  statusFlags: number;
  /** F_GETOWN: pid, -pgid, or 0. */
  owner: number;
  /** F_GETSIG: 0 means SIGIO. */
  signal: number;
  cloexec: boolean;
}

export interface Endpoint {
  id: EndpointId;
  /** Absent for listen sockets. */
  peer?: EndpointId;
  role: Role;
  family: Family;
  type: SocketType;
  protocol: number;
  /** The fd numbers the endpoint occupied in the process (several if dup'd). */
  fds: number[];
  local?: Address;
  remote?: Address;
  backlog?: number;
  options: SocketOption[];
  fcntl?: FcntlState;
  /** Receive-queue bytes at checkpoint. */
  drained: Uint8Array;
  /**
   * Send-queue bytes the peer had not received at checkpoint (captured in TCP repair mode).
   * The restore sends them to the peer after the peer's own drained bytes.
   */
  unsent?: Uint8Array;
  /** The node id the peer ran on at checkpoint, when known. */
  peerNode?: bigint;
  /**
   * The peer process's executable name, when known. A peer that was a parent daemon of a
   * departed node is re-homed to this job's parent daemon on the new node (SPEC §3.5).
   */
  peerExecutable?: string;
}

export interface Manifest {
  process: ProcessId;
  /** Executable name (comm), e.g. `orted`. */
  executable: string;
  /** The pid of the process now; 0 before it exists. */
  pid: number;
  /** The pid at checkpoint, for F_SETOWN remapping; defaults to `process.pid`. */
  checkpointPid?: number;
  /** The node it ran on at checkpoint. */
  nodeId?: bigint;
  /** Job id, for parent-daemon re-homing. */
  job?: string;
  endpoints: Endpoint[];
}

export interface NodeInfo {
  nodeId: bigint;
  /** The routable address of the node's rewire listener (never 0.0.0.0). */
  address: string;
  port: number;
  name?: string;
  departed?: boolean;
}

export interface PlacementEntry {
  process: ProcessId;
  nodeId: bigint;
}

export interface Replacement {
  old: ProcessId;
  new: ProcessId;
}

/** Where processes run now and where each node's agent listens. Versioned. */
export interface Placement {
  version: bigint;
  nodes: NodeInfo[];
  processes: PlacementEntry[];
  replacements: Replacement[];
}
