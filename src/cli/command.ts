/**
 * What a CLI command is: a name, its help, its flags, and a `run` that returns an exit code.
 * Each command lives in its own file under `commands/` and is listed in `commands/index.ts`.
 */
import { RewireError } from '../../ffi/errors.ts';
import type { Io } from './io.ts';

export interface OptionDef {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder shown in help for a string option, e.g. `FILE`. */
  value?: string;
  description: string;
}

export type OptionValues = Record<string, string | boolean | undefined>;

export interface CommandContext {
  values: OptionValues;
  positionals: string[];
  /** The words after `--`, for commands that take a command line of their own. */
  rest: string[];
  io: Io;
  env: Record<string, string | undefined>;
}

export interface Command {
  name: string;
  /** One line for `rewire help`. */
  summary: string;
  /** The arguments after `rewire NAME`, e.g. `[options] MANIFEST`. */
  usage: string;
  /** More help, shown by `rewire help NAME`. */
  details?: string;
  options?: Record<string, OptionDef>;
  /** How many positional arguments it takes (default: none). */
  positionals?: { min: number; max: number };
  /** Takes the words after `--` (default: refuses them). */
  rest?: boolean;
  run(ctx: CommandContext): Promise<number>;
}

/** The command line is wrong (code `EUSAGE`, exit code 2). */
export class UsageError extends RewireError {
  override name = 'UsageError';

  constructor(message: string) {
    super('EUSAGE', message);
  }
}
