import type { PeerView } from '../../agent/handle.ts';
import type { Command } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';
import { renderTable } from '../table.ts';

export const peers: Command = {
  name: 'peers',
  summary: 'List the peer agents this agent knows and their state',
  usage: '[--json]',
  options: clientOptions,
  async run(ctx) {
    const body = await clientFor(ctx).get<{ peers: PeerView[] }>('/v1/peers');
    if (ctx.values.json) {
      ctx.io.out(toJson(body));
      return ExitCode.ok;
    }
    ctx.io.out(
      renderTable(body.peers, [
        { header: 'node id', value: (p) => p.nodeId },
        { header: 'name', value: (p) => p.name },
        { header: 'address', value: (p) => `${p.address}:${p.port}` },
        { header: 'state', value: (p) => p.state },
        { header: 'last seen', value: (p) => p.lastSeen },
        { header: 'last error', value: (p) => p.lastError },
      ]),
    );
    return ExitCode.ok;
  },
};
