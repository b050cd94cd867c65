/**
 * The handshake between two agents on the TCP connection that becomes a restored connection
 * (SPEC §5). Both halves read exactly one frame at a time, so no byte that follows the
 * handshake is consumed:
 *
 *   dialer                                   acceptor
 *   Hello{node, nonce_d}            ->
 *                                   <-       Challenge{node, nonce_a, proof_a}
 *   (verify proof_a)
 *   Attach{proof_d, from, to, version, drained_d} ->
 *                                            (verify proof_d; match `to`)
 *                                   <-       Accepted{endpoint, drained_a, version} | Refused
 *                                   <-       drained_d, raw (lands in the dialer's receive queue)
 *   drained_a, raw                  ->       (lands in the acceptor's receive queue)
 *
 * For the cluster connection map the dialer sends a Query{proof_d} instead of the Attach; the
 * acceptor verifies it the same way, answers with one Captures frame and closes.
 *
 * A peer that fails authentication learns nothing: the acceptor closes without a word.
 */
import { send } from '../../ffi/index.ts';
import { AuthError, ProtocolError } from '../errors.ts';
import { decodePeerFrame, encodePeerFrame } from '../model/codec.ts';
import type { Accepted, Attach, Captures, PeerFrame, Query, Refused } from '../model/frames.ts';
import type { EndpointId } from '../model/types.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { freshNonce, proof, proofMatches, PROTOCOL_VERSION } from '../wire/auth.ts';
import { FRAME_HEADER, writeLength } from '../wire/framer.ts';
import { readFrame, readLoneFrame, writeAll } from '../wire/stream.ts';

export interface HandshakeContext {
  reactor: Reactor;
  key: Uint8Array;
  nodeId: bigint;
  maxFrameBytes: number;
}

type Kind = PeerFrame['kind'];
type FrameOf<K extends Kind> = Extract<PeerFrame, { kind: K }>;

/** The answer to an Attach. */
export type Answer =
  { kind: 'accepted'; accepted: Accepted } | { kind: 'refused'; refused: Refused };

/**
 * Sends one frame, followed in the same write by `trailing` raw bytes when given (the acceptor
 * sends its Accepted frame and the dialer's drained bytes together).
 */
export async function sendFrame(
  ctx: HandshakeContext,
  fd: number,
  f: PeerFrame,
  deadline: number,
  trailing?: Uint8Array,
): Promise<void> {
  const body = encodePeerFrame(f);
  const bytes = new Uint8Array(FRAME_HEADER + body.length + (trailing?.length ?? 0));
  writeLength(bytes, body.length);
  bytes.set(body, FRAME_HEADER);
  if (trailing) bytes.set(trailing, FRAME_HEADER + body.length);
  // The common case fits in the socket buffer at once; only wait when it does not.
  const n = send(fd, bytes);
  if (n === bytes.length) return;
  await writeAll(ctx.reactor, fd, bytes.subarray(Math.max(0, n)), deadline, `a ${f.kind} frame`);
}

/**
 * Reads the next frame, which must be one of `kinds`. `followed` says whether the peer may send
 * more bytes right after it (the Accepted frame is followed by raw drained bytes): then the
 * frame is read exactly; otherwise the peer waits for our answer and one recv takes it all.
 */
export async function expectFrame<K extends Kind>(
  ctx: HandshakeContext,
  fd: number,
  kinds: readonly K[],
  deadline: number,
  followed = false,
): Promise<FrameOf<K>> {
  const what = `a ${kinds.join(' or ')} frame`;
  const read = followed ? readFrame : readLoneFrame;
  const body = await read(ctx.reactor, fd, deadline, ctx.maxFrameBytes, what);
  const f = decodePeerFrame(body);
  if (!(kinds as readonly string[]).includes(f.kind)) {
    throw new ProtocolError(
      `Unexpected ${f.kind} frame from the peer agent: expected ${kinds.join(' or ')}`,
    );
  }
  return f as FrameOf<K>;
}

/** What the dialer names once the acceptor has proved itself. */
export interface AttachRequest {
  from: EndpointId;
  to: EndpointId;
  placementVersion: bigint;
  drained: Uint8Array;
}

/** Sends the Hello and verifies the acceptor's Challenge; returns what the dialer's proof covers. */
/**
 * Sends Hello and checks the acceptor's Challenge. `helloDeadline` bounds the Hello's send,
 * which is also the wait for a connect still in progress.
 */
async function greetAcceptor(
  ctx: HandshakeContext,
  fd: number,
  deadline: number,
  helloDeadline = deadline,
) {
  const nonceD = freshNonce();
  await sendFrame(
    ctx,
    fd,
    { kind: 'hello', hello: { version: PROTOCOL_VERSION, nodeId: ctx.nodeId, nonce: nonceD } },
    helloDeadline,
  );
  const { challenge } = await expectFrame(ctx, fd, ['challenge'], deadline);
  const nonces = { dialer: nonceD, acceptor: challenge.nonce };
  const nodes = { dialer: ctx.nodeId, acceptor: challenge.nodeId };
  if (!proofMatches(challenge.proof, proof(ctx.key, 'acceptor', nonces, nodes))) {
    throw new AuthError(
      `Peer agent of node '${challenge.nodeId}' failed authentication: it does not hold this cluster's key`,
    );
  }
  return { challenge, nonces, nodes };
}

/**
 * Runs the dialer's half up to the acceptor's answer. Returns the Accepted or Refused frame;
 * throws AuthError when the acceptor fails to prove the key, or closes after our proof.
 */
export async function dialerHandshake(
  ctx: HandshakeContext,
  fd: number,
  request: AttachRequest,
  deadline: number,
  connectDeadline = deadline,
): Promise<{ answer: Answer; acceptorNode: bigint }> {
  const { challenge, nonces, nodes } = await greetAcceptor(ctx, fd, deadline, connectDeadline);
  const attach = { proof: proof(ctx.key, 'dialer', nonces, nodes), ...request };
  await sendFrame(ctx, fd, { kind: 'attach', attach }, deadline);
  try {
    const answer = await expectFrame(ctx, fd, ['accepted', 'refused'], deadline, true);
    return { answer, acceptorNode: challenge.nodeId };
  } catch (err) {
    // An acceptor that rejects our proof resets the connection; one that goes away (stopped,
    // killed) closes it. Nothing else tells the two apart, and a rejected peer learns no more.
    const node = challenge.nodeId;
    if ((err as { errnoName?: string }).errnoName === 'ECONNRESET') {
      throw new AuthError(
        `Peer agent of node '${node}' reset the connection after our proof: it does not accept this node's cluster key`,
      );
    }
    if ((err as { code?: string }).code !== 'EPEER_CLOSED') throw err;
    throw new ProtocolError(
      `Peer agent of node '${node}' closed the connection during the handshake: it stopped or was killed`,
      'EPEER_AGENT_LOST',
    );
  }
}

/**
 * Runs the dialer's half of a query for the acceptor's captures (the cluster connection map):
 * the same authentication as an attach, then a Query, answered by one Captures frame.
 * Throws AuthError when the acceptor fails to prove the key.
 */
export async function queryHandshake(
  ctx: HandshakeContext,
  fd: number,
  deadline: number,
): Promise<{ captures: Captures; acceptorNode: bigint }> {
  const { challenge, nonces, nodes } = await greetAcceptor(ctx, fd, deadline);
  const query = { proof: proof(ctx.key, 'dialer', nonces, nodes) };
  await sendFrame(ctx, fd, { kind: 'query', query }, deadline);
  const { captures } = await expectFrame(ctx, fd, ['captures'], deadline, true);
  return { captures, acceptorNode: challenge.nodeId };
}

/** What a verified dialer asked for: to attach an endpoint, or the captures. */
export type AcceptorRequest =
  { attach: Attach; dialerNode: bigint } | { query: Query; dialerNode: bigint };

/**
 * Runs the acceptor's half up to the verified Attach or Query. Throws AuthError (after which
 * the caller closes the connection without answering) when the dialer's proof is wrong.
 */
export async function acceptorHandshake(
  ctx: HandshakeContext,
  fd: number,
  deadline: number,
): Promise<AcceptorRequest> {
  const { hello } = await expectFrame(ctx, fd, ['hello'], deadline);
  if (hello.version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `Cannot talk to peer agent: protocol version ${hello.version}, this agent speaks ${PROTOCOL_VERSION}`,
    );
  }
  const nonceA = freshNonce();
  const nonces = { dialer: hello.nonce, acceptor: nonceA };
  const nodes = { dialer: hello.nodeId, acceptor: ctx.nodeId };
  const challenge = {
    nodeId: ctx.nodeId,
    nonce: nonceA,
    proof: proof(ctx.key, 'acceptor', nonces, nodes),
  };
  await sendFrame(ctx, fd, { kind: 'challenge', challenge }, deadline);
  const request = await expectFrame(ctx, fd, ['attach', 'query'], deadline);
  const given = request.kind === 'attach' ? request.attach.proof : request.query.proof;
  if (!proofMatches(given, proof(ctx.key, 'dialer', nonces, nodes))) {
    throw new AuthError(
      `Peer claiming node '${hello.nodeId}' failed authentication: wrong cluster key`,
    );
  }
  if (request.kind === 'query') return { query: request.query, dialerNode: hello.nodeId };
  return { attach: request.attach, dialerNode: hello.nodeId };
}

/** Writes the other side's drained bytes raw after the handshake (see the sequence above). */
export async function writeRefill(
  ctx: HandshakeContext,
  fd: number,
  bytes: Uint8Array,
  deadline: number,
): Promise<void> {
  await writeAll(ctx.reactor, fd, bytes, deadline, `${bytes.length} drained bytes`);
}
