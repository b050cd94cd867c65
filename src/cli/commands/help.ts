import { UsageError, type Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { commandHelp, generalHelp } from '../help-text.ts';

/** `rewire help [COMMAND]`, over the command table it is given. */
export function helpCommand(table: () => readonly Command[]): Command {
  return {
    name: 'help',
    summary: 'Show help: commands, exit codes, or one command and its options',
    usage: '[COMMAND]',
    positionals: { min: 0, max: 1 },
    async run(ctx) {
      const name = ctx.positionals[0];
      if (name === undefined) {
        ctx.io.out(generalHelp(table()));
        return ExitCode.ok;
      }
      const command = table().find((c) => c.name === name);
      if (command === undefined)
        throw new UsageError(`Unknown command '${name}': see 'rewire help'`);
      ctx.io.out(commandHelp(command));
      return ExitCode.ok;
    },
  };
}
