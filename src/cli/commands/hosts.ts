import type { HostTableView } from '../../agent/handle.ts';
import type { Command } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';
import { renderTable } from '../table.ts';

export const hosts: Command = {
  name: 'hosts',
  summary: "Show the parent daemons' host tables: remote node to fd and endpoint",
  usage: '[--json]',
  options: clientOptions,
  async run(ctx) {
    const body = await clientFor(ctx).get<{ hosts: HostTableView[] }>('/v1/hosts');
    if (ctx.values.json) {
      ctx.io.out(toJson(body));
      return ExitCode.ok;
    }
    const rows = body.hosts.flatMap((table) => table.entries.map((entry) => ({ table, entry })));
    ctx.io.out(
      renderTable(rows, [
        { header: 'daemon', value: (r) => `${r.table.executable}[${r.table.pid}]` },
        { header: 'remote node', value: (r) => r.entry.remoteNode },
        { header: 'fd', value: (r) => r.entry.fd },
        { header: 'endpoint', value: (r) => r.entry.endpoint },
        { header: 'peer', value: (r) => r.entry.peer },
        { header: 'peer birth node', value: (r) => r.entry.peerBirthNode },
      ]),
    );
    return ExitCode.ok;
  },
};
