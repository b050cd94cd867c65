import type { ConnectionView, NodeView, PeerView, RestoreView } from '../../agent/handle.ts';
import { AgentError } from '../client.ts';
import type { Command } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';
import { renderFields } from '../table.ts';

async function readiness(get: () => Promise<unknown>): Promise<boolean> {
  try {
    await get();
    return true;
  } catch (err) {
    if (err instanceof AgentError && err.status === 503) return false;
    throw err;
  }
}

export const status: Command = {
  name: 'status',
  summary: "Show the local agent's node, readiness and counts",
  usage: '[--json]',
  details: 'Exits 0 when the agent is ready, 1 when it answers but is not ready yet.',
  options: clientOptions,
  async run(ctx) {
    const client = clientFor(ctx);
    const node = await client.get<NodeView>('/v1/node');
    const ready = await readiness(() => client.get('/readyz'));
    const { peers } = await client.get<{ peers: PeerView[] }>('/v1/peers');
    const { restores } = await client.get<{ restores: RestoreView[] }>('/v1/restores');
    const { connections } = await client.get<{ connections: ConnectionView[] }>('/v1/connections');

    const summary = {
      node,
      ready,
      peers: peers.length,
      reachablePeers: peers.filter((p) => p.state === 'reachable').length,
      runningRestores: restores.filter((r) => r.state === 'running').length,
      restores: restores.length,
      connections: connections.length,
    };
    if (ctx.values.json) ctx.io.out(toJson(summary));
    else ctx.io.out(renderStatus(summary));
    return ready ? ExitCode.ok : ExitCode.failure;
  },
};

function renderStatus(s: { node: NodeView; ready: boolean } & Record<string, unknown>): string {
  const { node } = s;
  return renderFields([
    ['node', `${node.name} (${node.nodeId})`],
    ['ready', s.ready ? 'yes' : 'no'],
    ['version', node.version],
    ['advertise', `${node.advertise.address}:${node.advertise.port}`],
    ['started', node.startedAt],
    ['placement', node.placementVersion ?? 'none'],
    ['local policy', node.localPolicy],
    ['peers', `${s.peers as number} (${s.reachablePeers as number} reachable)`],
    ['restores', `${s.restores as number} (${s.runningRestores as number} running)`],
    ['connections', s.connections as number],
  ]);
}
