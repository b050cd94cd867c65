import { readFileSync } from 'node:fs';

import type { RestoreView } from '../../agent/handle.ts';
import type { AgentClient } from '../client.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';
import { ProgressBar } from '../progress.ts';
import { finishedCount, renderRestore, restoreExitCode } from '../restore-view.ts';

export const restore: Command = {
  name: 'restore',
  summary: "Restore a process's connections from its manifest, and watch until done",
  usage: '[--no-wait] [--deadline-ms MS] [--json] MANIFEST',
  details:
    "MANIFEST is a JSON file, or '-' for standard input. The agent holds the restored fds until\n" +
    "the process claims them ('rewire exec'). Interrupting the watch leaves the restore running.",
  options: {
    'no-wait': {
      type: 'boolean',
      description: 'Print the started restore and exit, without watching',
    },
    'deadline-ms': {
      type: 'string',
      value: 'MS',
      description: 'Deadline for this restore (default: the agent setting)',
    },
    ...clientOptions,
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const manifest = readManifest(ctx.positionals[0]!);
    const client = clientFor(ctx);
    const deadline = ctx.values['deadline-ms'];
    const query = typeof deadline === 'string' ? `?deadlineMs=${encodeURIComponent(deadline)}` : '';
    const started = await client.post<RestoreView>(`/v1/restores${query}`, manifest);
    if (ctx.values['no-wait']) return report(ctx, started, ExitCode.ok);

    const view = await watch(ctx, client, started);
    return report(ctx, view, restoreExitCode(view));
  },
};

/** The manifest's text, checked to be JSON here so that a typo is reported with the file name. */
function readManifest(path: string): string {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new UsageError(
      `Cannot read manifest '${path}': ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  try {
    JSON.parse(text);
  } catch (err) {
    throw new UsageError(`Cannot parse manifest '${path}' as JSON: ${(err as Error).message}`);
  }
  return text;
}

function report(ctx: CommandContext, view: RestoreView, code: number): number {
  ctx.io.out(ctx.values.json ? toJson(view) : renderRestore(view));
  return code;
}

/** Polls the restore until it is no longer running, drawing progress on a terminal. */
async function watch(
  ctx: CommandContext,
  client: AgentClient,
  started: RestoreView,
): Promise<RestoreView> {
  const bar = new ProgressBar(ctx.io, `restore ${started.id}`);
  const path = `/v1/restores/${encodeURIComponent(started.id)}`;
  const detach = () => {
    bar.clear();
    ctx.io.err(
      `Stopped watching: restore ${started.id} goes on in the agent (cancel it with 'rewire cancel ${started.id}')`,
    );
    process.exit(130);
  };
  process.once('SIGINT', detach);

  try {
    let view = started;
    for (let delay = 20; view.state === 'running'; delay = Math.min(delay * 2, 250)) {
      bar.update(finishedCount(view), view.endpoints.length, 'endpoints');
      await Bun.sleep(delay);
      view = await client.get<RestoreView>(path);
    }
    return view;
  } finally {
    process.off('SIGINT', detach);
    bar.clear();
  }
}
