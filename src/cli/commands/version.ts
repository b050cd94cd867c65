import { version as rewireVersion } from '../../version.ts';
import type { Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';

export const version: Command = {
  name: 'version',
  summary: 'Print the version of this rewire executable',
  usage: '[--json]',
  options: { json: { type: 'boolean', description: 'Print JSON' } },
  async run(ctx) {
    const info = {
      version: rewireVersion,
      arch: process.arch,
      platform: process.platform,
      bun: Bun.version,
    };
    if (ctx.values.json) ctx.io.out(toJson(info));
    else ctx.io.out(`rewire ${info.version} (${info.platform}-${info.arch}, bun ${info.bun})`);
    return ExitCode.ok;
  },
};
