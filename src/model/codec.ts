/**
 * The protobuf form of the model and of the frames (SPEC §4, §5): typed conversion between
 * the values of `types.ts` and `frames.ts` and the bytes of one message of
 * `proto/rewire.proto`. Framing (the 4-byte length) is `src/wire/`'s.
 *
 * The schema is the `.proto` text itself, embedded in the program and parsed once at load;
 * the message types are looked up once. uint64 fields round-trip exactly as bigints.
 *
 * Ownership: the byte fields of a decoded value (nonces, proofs, drained bytes) are views
 * into the `bytes` passed in, not copies: keep those bytes unchanged while the value is in
 * use. Process ids and socket options that repeat are decoded once and shared (see
 * `pb-model.ts`); a shared option owns a copy of its value. Decoded values are not to be
 * modified. Encoding returns a new array.
 *
 * proto3 cannot tell zero from absent: optional fields of the model that are 0, empty or
 * false are not written, and decode as absent (`undefined`). Decoding checks the shape only
 * (required messages present, enums known); the rules of a valid manifest or placement are
 * `validate.ts`'s, for the caller to apply to what it received.
 */
import assert from 'node:assert';
import protobuf from 'protobufjs';
import protoText from '../../proto/rewire.proto' with { type: 'text' };

import { FrameError } from './errors.ts';
import type {
  Answer,
  ControlReply,
  ControlRequest,
  EndpointHow,
  EndpointResult,
  EndpointStatus,
  Offer,
  PeerFrame,
  RestoreDone,
} from './frames.ts';
import {
  bytes,
  endpointIdFromPb,
  endpointIdToPb,
  enumName,
  long,
  manifestFromPb,
  manifestToPb,
  placementFromPb,
  placementToPb,
  ShapeProblem,
  u64,
  type Long64,
  type PbEndpointId,
  type PbManifest,
} from './pb-model.ts';
import type { Manifest, Placement } from './types.ts';

const root = protobuf.parse(protoText).root;

// Without long.js protobufjs reads 64-bit fields as doubles and loses ids above 2^53.
assert(protobuf.util.Long, 'protobufjs must have long.js for exact 64-bit fields');

const T = {
  manifest: root.lookupType('rewire.v1.Manifest'),
  placement: root.lookupType('rewire.v1.Placement'),
  peerFrame: root.lookupType('rewire.v1.PeerFrame'),
  controlRequest: root.lookupType('rewire.v1.ControlRequest'),
  controlReply: root.lookupType('rewire.v1.ControlReply'),
};

// ---- Public API ---------------------------------------------------------------------------

/**
 * A manifest as protobuf bytes.
 * @throws {FrameError} when a 64-bit id is outside 0..2^64-1
 */
export function encodeManifest(m: Manifest): Uint8Array {
  return encode(T.manifest, 'manifest', () => manifestToPb(m));
}

/**
 * The manifest in protobuf bytes; validate it with `validateManifest` before use.
 * @throws {FrameError} (EFRAME) on bytes that are not a Manifest message, a missing process
 *   or endpoint id, or an unspecified or unknown role, family or type
 */
export function decodeManifest(bytes: Uint8Array): Manifest {
  return decode(T.manifest, bytes, 'manifest', (m: PbManifest) => manifestFromPb(m));
}

/**
 * A placement as protobuf bytes.
 * @throws {FrameError} when a 64-bit id is outside 0..2^64-1
 */
export function encodePlacement(p: Placement): Uint8Array {
  return encode(T.placement, 'placement', () => placementToPb(p));
}

/**
 * The placement in protobuf bytes; validate it with `validatePlacement` before use.
 * @throws {FrameError} (EFRAME) on bytes that are not a Placement message or a missing
 *   process id
 */
export function decodePlacement(bytes: Uint8Array): Placement {
  return decode(T.placement, bytes, 'placement', placementFromPb);
}

/**
 * A frame between agents as protobuf bytes (without the length prefix).
 * @throws {FrameError} when a 64-bit field is outside 0..2^64-1
 */
export function encodePeerFrame(f: PeerFrame): Uint8Array {
  return encode(T.peerFrame, 'peer frame', () => peerFrameToPb(f));
}

/**
 * The frame between agents in protobuf bytes.
 * @throws {FrameError} (EFRAME) on bytes that are not a PeerFrame, a frame with no body, or a
 *   body that lacks an endpoint id
 */
export function decodePeerFrame(bytes: Uint8Array): PeerFrame {
  return decode(T.peerFrame, bytes, 'peer frame', peerFrameFromPb);
}

/**
 * A control request as protobuf bytes.
 * @throws {FrameError} when a 64-bit id is outside 0..2^64-1
 */
export function encodeControlRequest(r: ControlRequest): Uint8Array {
  return encode(T.controlRequest, 'control request', () => controlRequestToPb(r));
}

/**
 * The control request in protobuf bytes.
 * @throws {FrameError} (EFRAME) on bytes that are not a ControlRequest, a request with no body
 *   or no manifest, or a manifest `decodeManifest` rejects
 */
export function decodeControlRequest(bytes: Uint8Array): ControlRequest {
  return decode(T.controlRequest, bytes, 'control request', controlRequestFromPb);
}

/**
 * A control reply as protobuf bytes.
 * @throws {FrameError} when a 64-bit field is outside 0..2^64-1
 */
export function encodeControlReply(r: ControlReply): Uint8Array {
  return encode(T.controlReply, 'control reply', () => controlReplyToPb(r));
}

/**
 * The control reply in protobuf bytes.
 * @throws {FrameError} (EFRAME) on bytes that are not a ControlReply, a reply with no body, an
 *   endpoint result without id or status, or an unknown `how`
 */
export function decodeControlReply(bytes: Uint8Array): ControlReply {
  return decode(T.controlReply, bytes, 'control reply', controlReplyFromPb);
}

// ---- Encode and decode with errors that say what and where --------------------------------

function encode(type: protobuf.Type, what: string, convert: () => object): Uint8Array {
  let message: object;
  try {
    message = convert();
  } catch (err) {
    if (err instanceof ShapeProblem) throw new FrameError(`Cannot encode ${what}: ${err.message}`);
    throw err;
  }
  return plain(type.encode(message).finish());
}

function decode<M, T>(
  type: protobuf.Type,
  input: Uint8Array,
  what: string,
  convert: (m: M) => T,
): T {
  let message: M;
  try {
    message = type.decode(input) as unknown as M;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new FrameError(`Cannot decode ${what}: the bytes are not a valid message (${reason})`, {
      cause,
    });
  }

  try {
    return convert(message);
  } catch (err) {
    if (err instanceof ShapeProblem) throw new FrameError(`Cannot decode ${what}: ${err.message}`);
    throw err;
  }
}

/** protobufjs returns a Buffer where Bun has one; callers get a plain Uint8Array view. */
function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function noBody(names: string): never {
  throw new ShapeProblem('', `it has no body (expected one of ${names})`);
}

// ---- Peer frames --------------------------------------------------------------------------

interface PbAccepted {
  endpoint?: PbEndpointId | null;
  drained?: Uint8Array;
  placementVersion?: Long64;
}

interface PbOffer {
  ticket?: Uint8Array;
  from?: PbEndpointId | null;
  to?: PbEndpointId | null;
  placementVersion?: Long64;
  drained?: Uint8Array;
  waitMs?: number;
}

interface PbAnswer {
  ticket?: Uint8Array;
  accepted?: PbAccepted | null;
  refused?: { code?: string; message?: string } | null;
}

interface PbPeerFrame {
  hello?: { version?: number; nodeId?: Long64; nonce?: Uint8Array } | null;
  challenge?: { nodeId?: Long64; nonce?: Uint8Array; proof?: Uint8Array } | null;
  join?: { proof?: Uint8Array } | null;
  joined?: object | null;
  offers?: { offers?: PbOffer[] } | null;
  answers?: { answers?: PbAnswer[] } | null;
  query?: { proof?: Uint8Array } | null;
  captures?: { manifests?: PbManifest[] } | null;
}

function peerFrameFromPb(m: PbPeerFrame): PeerFrame {
  if (m.hello) {
    const { version, nodeId, nonce } = m.hello;
    return {
      kind: 'hello',
      hello: { version: version ?? 0, nodeId: u64(nodeId), nonce: bytes(nonce) },
    };
  }
  if (m.challenge) {
    const c = m.challenge;
    const challenge = { nodeId: u64(c.nodeId), nonce: bytes(c.nonce), proof: bytes(c.proof) };
    return { kind: 'challenge', challenge };
  }
  if (m.join) return { kind: 'join', join: { proof: bytes(m.join.proof) } };
  if (m.joined) return { kind: 'joined' };
  if (m.offers) return { kind: 'offers', offers: (m.offers.offers ?? []).map(offerFromPb) };
  if (m.answers) return { kind: 'answers', answers: (m.answers.answers ?? []).map(answerFromPb) };
  if (m.query) return { kind: 'query', query: { proof: bytes(m.query.proof) } };
  if (m.captures) {
    const manifests = (m.captures.manifests ?? []).map((x, i) =>
      manifestFromPb(x, `captures.manifests[${i}]`),
    );
    return { kind: 'captures', captures: { manifests } };
  }
  return noBody('hello, challenge, join, joined, offers, answers, query, captures');
}

function offerFromPb(o: PbOffer, i: number): Offer {
  return {
    ticket: bytes(o.ticket),
    from: endpointIdFromPb(o.from, `offers[${i}].from`),
    to: endpointIdFromPb(o.to, `offers[${i}].to`),
    placementVersion: u64(o.placementVersion),
    drained: bytes(o.drained),
    waitMs: o.waitMs ?? 0,
  };
}

function answerFromPb(a: PbAnswer, i: number): Answer {
  const ticket = bytes(a.ticket);
  if (a.accepted) {
    const accepted = {
      endpoint: endpointIdFromPb(a.accepted.endpoint, `answers[${i}].accepted.endpoint`),
      drained: bytes(a.accepted.drained),
      placementVersion: u64(a.accepted.placementVersion),
    };
    return { ticket, accepted };
  }
  if (a.refused) {
    return { ticket, refused: { code: a.refused.code ?? '', message: a.refused.message ?? '' } };
  }
  throw new ShapeProblem(`answers[${i}]`, 'has neither accepted nor refused');
}

function peerFrameToPb(f: PeerFrame): PbPeerFrame {
  switch (f.kind) {
    case 'hello': {
      const h = f.hello;
      return {
        hello: { version: h.version, nodeId: long(h.nodeId, 'hello.nodeId'), nonce: h.nonce },
      };
    }
    case 'challenge': {
      const c = f.challenge;
      const nodeId = long(c.nodeId, 'challenge.nodeId');
      return { challenge: { nodeId, nonce: c.nonce, proof: c.proof } };
    }
    case 'join':
      return { join: { proof: f.join.proof } };
    case 'joined':
      return { joined: {} };
    case 'offers':
      return { offers: { offers: f.offers.map(offerToPb) } };
    case 'answers':
      return { answers: { answers: f.answers.map(answerToPb) } };
    case 'query':
      return { query: { proof: f.query.proof } };
    case 'captures':
      return { captures: { manifests: f.captures.manifests.map(manifestToPb) } };
  }
}

function offerToPb(o: Offer, i: number): PbOffer {
  return {
    ticket: o.ticket,
    from: endpointIdToPb(o.from, `offers[${i}].from`),
    to: endpointIdToPb(o.to, `offers[${i}].to`),
    placementVersion: long(o.placementVersion, `offers[${i}].placementVersion`),
    drained: o.drained,
    waitMs: o.waitMs,
  };
}

function answerToPb(a: Answer, i: number): PbAnswer {
  if (a.accepted) {
    const accepted = {
      endpoint: endpointIdToPb(a.accepted.endpoint, `answers[${i}].accepted.endpoint`),
      drained: a.accepted.drained,
      placementVersion: long(a.accepted.placementVersion, `answers[${i}].placementVersion`),
    };
    return { ticket: a.ticket, accepted };
  }
  return { ticket: a.ticket, refused: { code: a.refused.code, message: a.refused.message } };
}

// ---- Control frames -----------------------------------------------------------------------

interface PbControlRequest {
  restore?: { manifest?: PbManifest | null; deadlineMs?: number; keepOpen?: boolean } | null;
  ready?: object | null;
}

function controlRequestFromPb(m: PbControlRequest): ControlRequest {
  if (m.ready) return { kind: 'ready' };
  if (!m.restore) return noBody('restore, ready');

  const r = m.restore;
  if (!r.manifest) throw new ShapeProblem('restore.manifest', 'is missing');
  const manifest = manifestFromPb(r.manifest, 'restore.manifest');
  const restore = { manifest, deadlineMs: r.deadlineMs ?? 0, keepOpen: r.keepOpen ?? false };
  return { kind: 'restore', restore };
}

function controlRequestToPb(r: ControlRequest): PbControlRequest {
  if (r.kind === 'ready') return { ready: {} };
  const { manifest, deadlineMs, keepOpen } = r.restore;
  return { restore: { manifest: manifestToPb(manifest), deadlineMs, keepOpen } };
}

interface PbEndpointResult {
  id?: PbEndpointId | null;
  status?: number;
  how?: string;
  code?: string;
  message?: string;
  fds?: number[];
  attached?: number;
  peer?: PbEndpointId | null;
}

interface PbRestoreDone {
  restoreId?: string;
  live?: number;
  dead?: number;
  failed?: number;
  placementVersion?: Long64;
  code?: string;
  message?: string;
}

interface PbControlReply {
  endpoint?: PbEndpointResult | null;
  done?: PbRestoreDone | null;
}

const STATUSES = [undefined, 'live', 'dead', 'failed'] as const;
const STATUS_NUMBER: Record<EndpointStatus, number> = { live: 1, dead: 2, failed: 3 };
const HOWS: ReadonlySet<string> = new Set<EndpointHow>([
  'remote',
  'local-pair',
  'unix-pair',
  'listen',
  'rehomed',
  'dead',
]);

function controlReplyFromPb(m: PbControlReply): ControlReply {
  if (m.endpoint) return { kind: 'endpoint', endpoint: endpointResultFromPb(m.endpoint) };
  if (m.done) return { kind: 'done', done: restoreDoneFromPb(m.done) };
  return noBody('endpoint, done');
}

function endpointResultFromPb(m: PbEndpointResult): EndpointResult {
  const out: EndpointResult = {
    id: endpointIdFromPb(m.id, 'endpoint.id'),
    status: enumName(STATUSES, m.status, 'endpoint.status'),
    fds: m.fds && m.fds.length > 0 ? m.fds : [],
    attached: m.attached ?? 0,
  };
  if (m.how) {
    if (!HOWS.has(m.how))
      throw new ShapeProblem('endpoint.how', `has the unknown value '${m.how}'`);
    out.how = m.how as EndpointHow;
  }
  if (m.code) out.code = m.code;
  if (m.message) out.message = m.message;
  if (m.peer) out.peer = endpointIdFromPb(m.peer, 'endpoint.peer');
  return out;
}

function restoreDoneFromPb(m: PbRestoreDone): RestoreDone {
  const out: RestoreDone = {
    restoreId: m.restoreId ?? '',
    live: m.live ?? 0,
    dead: m.dead ?? 0,
    failed: m.failed ?? 0,
    placementVersion: u64(m.placementVersion),
  };
  if (m.code) out.code = m.code;
  if (m.message) out.message = m.message;
  return out;
}

function controlReplyToPb(r: ControlReply): PbControlReply {
  if (r.kind === 'done') {
    const d = r.done;
    const placementVersion = long(d.placementVersion, 'done.placementVersion');
    return { done: { ...d, placementVersion } };
  }

  const e = r.endpoint;
  const out: PbEndpointResult = {
    id: endpointIdToPb(e.id, 'endpoint.id'),
    status: STATUS_NUMBER[e.status],
    fds: e.fds,
    attached: e.attached,
  };
  if (e.how) out.how = e.how;
  if (e.code) out.code = e.code;
  if (e.message) out.message = e.message;
  if (e.peer) out.peer = endpointIdToPb(e.peer, 'endpoint.peer');
  return { endpoint: out };
}
