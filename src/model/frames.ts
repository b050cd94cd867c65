/**
 * The frames of `proto/rewire.proto` as TypeScript values: what agents send each other
 * (`PeerFrame`, SPEC §5) and what a local process and its agent exchange over the control
 * socket (`ControlRequest`, `ControlReply`, SPEC §3.9). `codec.ts` converts them to and from
 * bytes. Fields mirror the proto messages in camelCase; 64-bit numbers are bigints, byte
 * strings Uint8Arrays, enums string unions.
 */
import type { EndpointId, Manifest } from './types.ts';

/** Dialer to acceptor, first frame of a session. */
export interface Hello {
  version: number;
  nodeId: bigint;
  /** 32 random bytes. */
  nonce: Uint8Array;
}

/** Acceptor to dialer: proves the acceptor holds the cluster key. */
export interface Challenge {
  nodeId: bigint;
  /** 32 random bytes. */
  nonce: Uint8Array;
  /** HMAC-SHA256 over the acceptor label, both nonces and both node ids. */
  proof: Uint8Array;
}

/** Dialer to acceptor: proves the dialer holds the key and opens a restore session. */
export interface Join {
  proof: Uint8Array;
}

/** Dialer to acceptor: one connection being restored, whose data connection opens with `ticket`. */
export interface Offer {
  /** 16 random bytes, used once. */
  ticket: Uint8Array;
  /** The connect-side endpoint. */
  from: EndpointId;
  /** The accept-side endpoint, as the connect side recorded its peer. */
  to: EndpointId;
  placementVersion: bigint;
  /** The connect side's drained bytes: the acceptor writes them back. */
  drained: Uint8Array;
  /** How long the dialer waits for the answer from now, in ms. */
  waitMs: number;
}

/** The endpoint matched; the dialer's drained bytes are on the data connection already. */
export interface Accepted {
  endpoint: EndpointId;
  drained: Uint8Array;
  placementVersion: bigint;
}

/** The offer was refused; `code` is a RewireError code. */
export interface Refused {
  code: string;
  message: string;
}

/** Acceptor to dialer: the outcome of the offer with `ticket`. */
export type Answer =
  | { ticket: Uint8Array; accepted: Accepted; refused?: undefined }
  | { ticket: Uint8Array; refused: Refused; accepted?: undefined };

/** Dialer to acceptor, instead of a Join: proves the key, then asks for the captures. */
export interface Query {
  proof: Uint8Array;
}

/** Acceptor to dialer: its captures (without drained bytes), for the cluster map. */
export interface Captures {
  manifests: Manifest[];
}

/** One frame between agents: exactly one body, named by `kind`. */
export type PeerFrame =
  | { kind: 'hello'; hello: Hello }
  | { kind: 'challenge'; challenge: Challenge }
  | { kind: 'join'; join: Join }
  | { kind: 'joined' }
  | { kind: 'offers'; offers: Offer[] }
  | { kind: 'answers'; answers: Answer[] }
  | { kind: 'query'; query: Query }
  | { kind: 'captures'; captures: Captures };

export type PeerFrameKind = PeerFrame['kind'];

/** A process (or a launcher on its behalf) asks its agent to restore its endpoints. */
export interface RestoreRequest {
  manifest: Manifest;
  /** 0: the agent's default. */
  deadlineMs: number;
  /** Keep the session open for connections handed over later. */
  keepOpen: boolean;
}

/** One frame from a local client to its agent. */
export type ControlRequest =
  | { kind: 'restore'; restore: RestoreRequest }
  /** On a kept-open session: the process's fds are in place; hand it connections from now on. */
  | { kind: 'ready' };

/** live: restored, the fd is attached; dead: a dead socket is attached; failed: nothing is. */
export type EndpointStatus = 'live' | 'dead' | 'failed';

/** How an endpoint was restored. */
export type EndpointHow = 'remote' | 'local-pair' | 'unix-pair' | 'listen' | 'rehomed' | 'dead';

/** The outcome of one endpoint; the fd, when attached, travels with the frame (SCM_RIGHTS). */
export interface EndpointResult {
  id: EndpointId;
  status: EndpointStatus;
  how?: EndpointHow;
  /** The error code when not live. */
  code?: string;
  message?: string;
  /** The fd numbers it should occupy in the process. */
  fds: number[];
  /** The number of fds attached to this frame (0 or 1). */
  attached: number;
  /** The peer it is connected to now. */
  peer?: EndpointId;
}

/** The last frame of a restore. */
export interface RestoreDone {
  restoreId: string;
  live: number;
  dead: number;
  failed: number;
  placementVersion: bigint;
  /** Set when the restore as a whole failed. */
  code?: string;
  message?: string;
}

/** One frame from an agent to a local client. */
export type ControlReply =
  { kind: 'endpoint'; endpoint: EndpointResult } | { kind: 'done'; done: RestoreDone };
