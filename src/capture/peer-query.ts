/**
 * Asking another node's agent for its captures, for the cluster map: a session with its
 * rewire port, the mutual authentication of every session, a Query, and the one Captures frame
 * it answers with (see `peer-handshake.ts`). The connection is closed after.
 */
import { close } from '../../ffi/index.ts';
import { RewireError } from '../errors.ts';
import type { Manifest, NodeInfo } from '../model/types.ts';
import {
  connectToAgent,
  HANDSHAKE_FRAME_BYTES,
  queryHandshake,
  type HandshakeContext,
} from '../rewire/peer-handshake.ts';
import { FrameChannel } from '../wire/channel.ts';

/**
 * The captures held by the agent of `node`, before `deadline` (ms since the epoch).
 * @throws {RewireError} EPEER_UNREACHABLE when it cannot be reached, EAUTH when it does not
 *   hold the cluster key, EDEADLINE when it does not answer in time
 */
export async function queryCaptures(
  ctx: HandshakeContext,
  node: NodeInfo,
  deadline: number,
): Promise<Manifest[]> {
  let fd: number;
  try {
    fd = await connectToAgent(ctx.reactor, node, deadline);
  } catch (err) {
    if ((err as { code?: string }).code === 'EDEADLINE') throw err;
    throw new RewireError(
      'EPEER_UNREACHABLE',
      `Cannot reach the agent of node '${node.nodeId}' at ${node.address}:${node.port}: ${(err as { errnoName?: string }).errnoName ?? (err as Error).message}`,
    );
  }
  const ch = new FrameChannel(ctx.reactor, fd, HANDSHAKE_FRAME_BYTES, deadline - Date.now());
  try {
    const { captures } = await queryHandshake(ctx, ch, deadline);
    return captures.manifests;
  } finally {
    ch.fail(new Error('the query is over'));
    close(fd);
  }
}
