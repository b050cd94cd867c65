/**
 * Where the CLI writes: results to stdout, diagnostics and progress to stderr. Commands use
 * this instead of `console`, so that output stays in order and tests can run them in-process.
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Writes to stderr as it is, without a newline (progress bars). */
  errRaw(text: string): void;
  /** stdout is a terminal: print tables. */
  readonly stdoutTty: boolean;
  /** stderr is a terminal: progress bars are allowed. */
  readonly stderrTty: boolean;
  /** Terminal width, for tables and bars. */
  readonly columns: number;
}

export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    errRaw: (text) => process.stderr.write(text),
    stdoutTty: process.stdout.isTTY === true,
    stderrTty: process.stderr.isTTY === true,
    columns: process.stdout.columns ?? process.stderr.columns ?? 100,
  };
}

/** Pretty JSON for `--json`, one document per command. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
