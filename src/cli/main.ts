/**
 * `rewire COMMAND [options]`: finds the command, parses its flags, runs it, and turns errors
 * into a message on stderr and a documented exit code.
 */
import { parseArgs } from 'node:util';

import { RewireError } from '../../ffi/errors.ts';
import { ConfigError } from '../config/errors.ts';
import { AgentError, UnreachableError } from './client.ts';
import { UsageError, type Command, type CommandContext } from './command.ts';
import { commands } from './commands/index.ts';
import { ExitCode } from './exit-codes.ts';
import { commandHelp, generalHelp } from './help-text.ts';
import { processIo, toJson, type Io } from './io.ts';

/** Runs `rewire` with `argv` (without the executable) and returns the exit code. */
export async function main(
  argv: string[],
  io: Io = processIo(),
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined) {
    io.err(generalHelp(commands));
    return ExitCode.usage;
  }
  if (name === '--help' || name === '-h') return run('help', [], io, env);
  if (name === '--version' || name === '-V') return run('version', args, io, env);
  return run(name, args, io, env);
}

async function run(name: string, args: string[], io: Io, env: Record<string, string | undefined>) {
  let json = args.includes('--json');
  try {
    const command = commands.find((c) => c.name === name);
    if (command === undefined) throw new UsageError(`Unknown command '${name}': see 'rewire help'`);

    const ctx = parse(command, args, io, env);
    if (ctx.values.help) {
      io.out(commandHelp(command));
      return ExitCode.ok;
    }
    json = ctx.values.json === true;
    return await command.run(ctx);
  } catch (err) {
    return fail(err, io, json);
  }
}

function parse(
  command: Command,
  args: string[],
  io: Io,
  env: CommandContext['env'],
): CommandContext {
  const dashes = args.indexOf('--');
  const own = dashes < 0 ? args : args.slice(0, dashes);
  const rest = dashes < 0 ? [] : args.slice(dashes + 1);
  if (dashes >= 0 && !command.rest)
    throw new UsageError(`'rewire ${command.name}' takes no arguments after '--'`);

  const options = { ...command.options, help: { type: 'boolean', short: 'h' } } as const;
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: own,
      options: options as never,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(
      `${(err as Error).message.replace(/\. To specify.*$/s, '')}: see 'rewire help ${command.name}'`,
    );
  }

  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  const count = parsed.positionals.length;
  if (!parsed.values.help && (count < min || count > max)) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw new UsageError(
      `'rewire ${command.name}' takes ${want} argument(s), got ${count}: usage: rewire ${command.name} ${command.usage}`,
    );
  }
  return {
    values: parsed.values as CommandContext['values'],
    positionals: parsed.positionals,
    rest,
    io,
    env,
  };
}

function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return ExitCode.usage;
  if (err instanceof ConfigError) return ExitCode.config;
  if (err instanceof UnreachableError) return ExitCode.unreachable;
  return ExitCode.failure;
}

function fail(err: unknown, io: Io, json: boolean): number {
  const code = exitCodeOf(err);
  if (json) {
    const error =
      err instanceof RewireError ? err.toJSON() : { code: 'EINTERNAL', message: String(err) };
    io.out(toJson({ error }));
  }
  if (err instanceof RewireError) {
    io.err(`rewire: ${err.message}`);
  } else {
    io.err(
      `rewire: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  }
  if (err instanceof AgentError && err.issues !== undefined && !err.message.includes('\n')) {
    for (const issue of err.issues as { path?: string; message?: string }[]) {
      io.err(`  ${issue.path || '(top level)'}: ${issue.message}`);
    }
  }
  return code;
}
