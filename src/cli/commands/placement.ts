import { readFileSync } from 'node:fs';

import { UsageError, type Command } from '../command.ts';
import { clientFor, clientOptions } from '../connect.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';

export const placement: Command = {
  name: 'placement',
  summary: "Show the agent's placement, or replace it with --set FILE",
  usage: '[--set FILE] [--json]',
  details: 'The placement is printed as JSON either way: it is the document that --set takes.',
  options: {
    set: {
      type: 'string',
      value: 'FILE',
      description: "Replace the placement with this JSON file ('-': stdin)",
    },
    ...clientOptions,
  },
  async run(ctx) {
    const client = clientFor(ctx);
    const file = ctx.values.set;
    if (typeof file !== 'string') {
      ctx.io.out(toJson(await client.get('/v1/placement')));
      return ExitCode.ok;
    }
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new UsageError(
        `Cannot read placement '${file}': ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    ctx.io.out(toJson(await client.put('/v1/placement', text)));
    return ExitCode.ok;
  },
};
