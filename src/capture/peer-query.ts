/**
 * Asking another node's agent for its captures, for the cluster map: a TCP connection to its
 * rewire port, the mutual authentication of every agent connection, a Query, and the one
 * Captures frame it answers with (see `peer-handshake.ts`). The connection is closed after.
 */
import { isIPv6 } from 'node:net';

import { close, connect, errnoName, socket, socketError } from '../../ffi/index.ts';
import { RewireError } from '../errors.ts';
import type { Manifest, NodeInfo } from '../model/types.ts';
import { queryHandshake, type HandshakeContext } from '../rewire/peer-handshake.ts';

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
  const family = isIPv6(node.address) ? 'inet6' : 'inet';
  const fd = socket(family, 'stream', { nonblock: true });
  try {
    if (!connect(fd, { family, address: node.address, port: node.port })) {
      await ctx.reactor.writable(fd, deadline, `the connection to ${node.address}:${node.port}`);
      const err = socketError(fd);
      if (err !== 0) {
        throw new RewireError(
          'EPEER_UNREACHABLE',
          `Cannot reach the agent of node '${node.nodeId}' at ${node.address}:${node.port}: ${errnoName(err)}`,
        );
      }
    }
    const { captures } = await queryHandshake(ctx, fd, deadline);
    return captures.manifests;
  } finally {
    ctx.reactor.forget(fd);
    close(fd);
  }
}
