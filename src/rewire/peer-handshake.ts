/**
 * How two agents prove to each other that they hold the cluster key (SPEC §5), on a session:
 * a TCP connection to the acceptor's rewire port that opens with the session record
 * (src/wire/opening.ts) and is never handed to a process.
 *
 *   dialer                                   acceptor
 *   "RWS2" record, Hello{node, nonce_d} ->
 *                                   <-       Challenge{node, nonce_a, proof_a}
 *   (verify proof_a)
 *   Join{proof_d} | Query{proof_d}  ->       (verify proof_d)
 *                                   <-       Joined | Captures (then close)
 *
 * Nothing names an endpoint before both proofs hold: the dialer sends its offers only after
 * Joined (peer-session.ts). A dialer that fails the acceptor's check is reset without a word.
 */
import { isIPv6 } from 'node:net';

import { close, connect, socket, socketError } from '../../ffi/index.ts';
import { SyscallError } from '../../ffi/errors.ts';
import { AuthError, ProtocolError } from '../errors.ts';
import { decodePeerFrame, encodePeerFrame } from '../model/codec.ts';
import type { Captures, PeerFrame } from '../model/frames.ts';
import type { NodeInfo } from '../model/types.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { freshNonce, proof, proofMatches, PROTOCOL_VERSION } from '../wire/auth.ts';
import type { FrameChannel } from '../wire/channel.ts';
import { sessionOpening } from '../wire/opening.ts';

export interface HandshakeContext {
  reactor: Reactor;
  key: Uint8Array;
  nodeId: bigint;
  maxFrameBytes: number;
}

/**
 * The largest frame taken from a peer before it has proved the cluster key: the handshake's
 * frames are a few hundred bytes, and a stranger must not make the agent allocate more.
 */
export const HANDSHAKE_FRAME_BYTES = 64 * 1024;

type Kind = PeerFrame['kind'];
type FrameOf<K extends Kind> = Extract<PeerFrame, { kind: K }>;

/**
 * A non-blocking TCP connection to the rewire port of `node`, connected by `deadline`.
 * @throws {SyscallError} with the connect's errno (ECONNREFUSED, ETIMEDOUT, ...) when it fails
 */
export async function connectToAgent(
  reactor: Reactor,
  node: Pick<NodeInfo, 'address' | 'port'>,
  deadline: number,
): Promise<number> {
  const family = isIPv6(node.address) ? 'inet6' : 'inet';
  const address = { family, address: node.address, port: node.port } as const;
  const fd = socket(family, 'stream', { nonblock: true });
  try {
    if (!connect(fd, address)) {
      await reactor.writable(fd, deadline, `the connection to ${node.address}:${node.port}`);
      const err = socketError(fd);
      if (err !== 0) {
        throw new SyscallError(
          { syscall: 'connect', fd, detail: `${node.address}:${node.port}` },
          err,
        );
      }
    }
    return fd;
  } catch (err) {
    reactor.forget(fd);
    close(fd);
    throw err;
  }
}

/** The next frame on `ch`, which must be one of `kinds`. */
export async function expectFrame<K extends Kind>(
  ch: FrameChannel,
  kinds: readonly K[],
  deadline: number,
): Promise<FrameOf<K>> {
  const what = `a ${kinds.join(' or ')} frame`;
  const f = decodePeerFrame(await ch.next(deadline, what));
  if (!(kinds as readonly string[]).includes(f.kind)) {
    throw new ProtocolError(
      `Unexpected ${f.kind} frame from the peer agent: expected ${kinds.join(' or ')}`,
    );
  }
  return f as FrameOf<K>;
}

/**
 * The dialer's half: opens the session, checks the acceptor's proof and sends its own with
 * `purpose`. Returns the acceptor's node id.
 * @throws {AuthError} when the acceptor does not hold the key
 */
export async function greetAcceptor(
  ctx: HandshakeContext,
  ch: FrameChannel,
  purpose: 'join' | 'query',
  deadline: number,
): Promise<bigint> {
  const nonceD = freshNonce();
  const hello = { version: PROTOCOL_VERSION, nodeId: ctx.nodeId, nonce: nonceD };
  ch.write(encodePeerFrame({ kind: 'hello', hello }), sessionOpening());
  const { challenge } = await expectFrame(ch, ['challenge'], deadline);
  const nonces = { dialer: nonceD, acceptor: challenge.nonce };
  const nodes = { dialer: ctx.nodeId, acceptor: challenge.nodeId };
  if (!proofMatches(challenge.proof, proof(ctx.key, 'acceptor', nonces, nodes))) {
    throw new AuthError(
      `Peer agent of node '${challenge.nodeId}' failed authentication: it does not hold this cluster's key`,
    );
  }
  ch.maxFrameBytes = ctx.maxFrameBytes;
  const mine = proof(ctx.key, 'dialer', nonces, nodes);
  const f: PeerFrame =
    purpose === 'join'
      ? { kind: 'join', join: { proof: mine } }
      : { kind: 'query', query: { proof: mine } };
  ch.write(encodePeerFrame(f));
  return challenge.nodeId;
}

/**
 * Waits for the acceptor's first frame after our proof. A reset means it rejected the proof;
 * a close means it went away.
 */
export async function expectAfterProof<K extends Kind>(
  ch: FrameChannel,
  kinds: readonly K[],
  node: bigint,
  deadline: number,
): Promise<FrameOf<K>> {
  try {
    return await expectFrame(ch, kinds, deadline);
  } catch (err) {
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
 * Asks the agent at the other end of a fresh connection for its captures (the cluster map).
 * @throws {AuthError} when it does not hold the key
 */
export async function queryHandshake(
  ctx: HandshakeContext,
  ch: FrameChannel,
  deadline: number,
): Promise<{ captures: Captures; acceptorNode: bigint }> {
  const node = await greetAcceptor(ctx, ch, 'query', deadline);
  const { captures } = await expectAfterProof(ch, ['captures'], node, deadline);
  return { captures, acceptorNode: node };
}

/**
 * The acceptor's half, after the session record: answers the Hello and checks the dialer's
 * proof. Throws AuthError (after which the caller resets the connection without answering)
 * when the proof is wrong.
 */
export async function acceptorHandshake(
  ctx: HandshakeContext,
  ch: FrameChannel,
  deadline: number,
): Promise<{ purpose: 'join' | 'query'; dialerNode: bigint }> {
  const { hello } = await expectFrame(ch, ['hello'], deadline);
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
  ch.write(encodePeerFrame({ kind: 'challenge', challenge }));
  const request = await expectFrame(ch, ['join', 'query'], deadline);
  const given = request.kind === 'join' ? request.join.proof : request.query.proof;
  if (!proofMatches(given, proof(ctx.key, 'dialer', nonces, nodes))) {
    throw new AuthError(
      `Peer claiming node '${hello.nodeId}' failed authentication: wrong cluster key`,
    );
  }
  ch.maxFrameBytes = ctx.maxFrameBytes;
  return { purpose: request.kind, dialerNode: hello.nodeId };
}
