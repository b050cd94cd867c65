/**
 * The agent's resolved configuration: what every part of the agent reads. Loading (file,
 * environment, flags, defaults) and validation live in `load.ts`.
 */
import type { Placement } from '../model/types.ts';

export type LocalPolicy = 'keep-family' | 'unix-when-local';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface HostPort {
  address: string;
  port: number;
}

export interface AgentConfig {
  /** This node's 64-bit id; by default DMTCP's hash of the host name. */
  nodeId: bigint;
  /** This node's name, for people (the host name by default). */
  nodeName: string;
  /** Where the peer listener binds. */
  listen: HostPort;
  /** The routable address other agents dial; never 0.0.0.0. */
  advertise: HostPort;
  /** The cluster key shared by all agents (HMAC-SHA256). */
  clusterKey: Uint8Array;
  /** The HTTP control API (loopback) and the bearer token that mutating routes need over TCP. */
  http: { address: string; port: number; token: string | undefined };
  /** Directory for the generated cluster key and other state. */
  stateDir: string;
  /** Directory (mode 0700) for the control socket and the API socket. */
  runtimeDir: string;
  /** How a connection whose two ends now share this node is paired. */
  localPolicy: LocalPolicy;
  /** Deadlines, in milliseconds. */
  deadlines: { connectMs: number; handshakeMs: number; restoreMs: number };
  /** Most peer connections being dialled at once. */
  dialConcurrency: number;
  /** Largest frame accepted from a peer agent or a local client, in bytes. */
  maxFrameBytes: number;
  /** Executable names recognised as MPI parent daemons. */
  parentDaemons: string[];
  /** Placement known at start-up (from the config file), if any. */
  placement: Placement | undefined;
  logLevel: LogLevel;
}
