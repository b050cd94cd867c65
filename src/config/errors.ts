/**
 * The error of a configuration that cannot be used: every problem names the field and where its
 * value came from, e.g. `listen.port: must be 0..65535 (from env REWIRE_LISTEN)`.
 */
import { RewireError } from '../../ffi/errors.ts';

/** One problem with one field, and the source of the value that has it. */
export interface ConfigIssue {
  /** The field as written in the config file, e.g. `listen.port` or `deadlines.connectMs`. */
  path: string;
  message: string;
  /** Where the value came from: `default`, `file /etc/rewire/rewire.toml`, `env X`, `flag --x`. */
  source: string;
}

/** The configuration is invalid (code `ECONFIG`); `issues` has one entry per problem. */
export class ConfigError extends RewireError {
  override name = 'ConfigError';
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[], options?: ErrorOptions) {
    super('ECONFIG', ConfigError.format(issues), options);
    this.issues = issues;
  }

  /** A one-issue error, for checks made outside the schema. */
  static single(path: string, message: string, source: string, cause?: unknown): ConfigError {
    return new ConfigError([{ path, message, source }], cause === undefined ? {} : { cause });
  }

  private static format(issues: ConfigIssue[]): string {
    const lines = issues.map(
      (i) => `${i.path === '' ? '(config)' : i.path}: ${i.message} (from ${i.source})`,
    );
    if (lines.length === 1) return `Invalid config: ${lines[0]}`;
    return `Invalid config: ${lines.length} problems\n  ${lines.join('\n  ')}`;
  }

  override toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, issues: this.issues };
  }
}
