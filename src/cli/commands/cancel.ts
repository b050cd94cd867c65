import type { RestoreView } from '../../agent/handle.ts';
import type { Command } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';
import { renderRestore } from '../restore-view.ts';

export const cancel: Command = {
  name: 'cancel',
  summary: 'Cancel a running restore; the fds it held are closed',
  usage: '[--json] ID',
  options: clientOptions,
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const id = encodeURIComponent(ctx.positionals[0]!);
    const view = await clientFor(ctx).delete<RestoreView>(`/v1/restores/${id}`);
    ctx.io.out(ctx.values.json ? toJson(view) : renderRestore(view));
    return ExitCode.ok;
  },
};
