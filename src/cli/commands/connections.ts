import type { ConnectionView } from '../../agent/handle.ts';
import type { Command } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';
import { renderTable } from '../table.ts';

export const connections: Command = {
  name: 'connections',
  summary: 'List restored connections and the nodes of both ends',
  usage: '[--process KEY] [--node ID] [--state live|dead] [--json]',
  options: {
    process: {
      type: 'string',
      value: 'KEY',
      description: 'Only this process (hostId:pid:birthTime:generation)',
    },
    node: {
      type: 'string',
      value: 'ID',
      description: 'Only connections with an end on this node id',
    },
    state: { type: 'string', value: 'STATE', description: 'Only live or dead connections' },
    ...clientOptions,
  },
  async run(ctx) {
    const query = new URLSearchParams();
    for (const key of ['process', 'node', 'state']) {
      const value = ctx.values[key];
      if (typeof value === 'string') query.set(key, value);
    }
    const suffix = query.size === 0 ? '' : `?${query}`;
    const body = await clientFor(ctx).get<{ connections: ConnectionView[] }>(
      `/v1/connections${suffix}`,
    );
    if (ctx.values.json) {
      ctx.io.out(toJson(body));
      return ExitCode.ok;
    }
    ctx.io.out(
      renderTable(body.connections, [
        { header: 'endpoint', value: (c) => c.endpoint },
        { header: 'peer', value: (c) => c.peer },
        { header: 'process', value: (c) => `${c.executable}[${c.pid}]` },
        { header: 'state', value: (c) => c.state },
        { header: 'how', value: (c) => c.how },
        { header: 'fds', value: (c) => c.fds.join(',') },
        { header: 'peer node', value: (c) => c.peerNode },
        { header: 'same node', value: (c) => (c.sameNode ? 'yes' : 'no') },
      ]),
    );
    return ExitCode.ok;
  },
};
