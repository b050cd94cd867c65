import type { RestoreView } from '../../agent/handle.ts';
import type { Command } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';
import { renderRestore, renderRestoreList } from '../restore-view.ts';

export const restores: Command = {
  name: 'restores',
  summary: 'List restores, or show one with per-endpoint progress',
  usage: '[--json] [ID]',
  options: clientOptions,
  positionals: { min: 0, max: 1 },
  async run(ctx) {
    const client = clientFor(ctx);
    const id = ctx.positionals[0];
    if (id !== undefined) {
      const view = await client.get<RestoreView>(`/v1/restores/${encodeURIComponent(id)}`);
      ctx.io.out(ctx.values.json ? toJson(view) : renderRestore(view));
      return ExitCode.ok;
    }
    const body = await client.get<{ restores: RestoreView[] }>('/v1/restores');
    ctx.io.out(ctx.values.json ? toJson(body) : renderRestoreList(body.restores));
    return ExitCode.ok;
  },
};
