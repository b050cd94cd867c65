/** The exit codes of `rewire`, documented in `rewire help`; scripts match on them. */
export const ExitCode = {
  /** The command did what was asked. */
  ok: 0,
  /** The command failed: the agent refused the request, or a local step failed. */
  failure: 1,
  /** The command line is wrong: unknown command or flag, missing argument. */
  usage: 2,
  /** No agent answers at the API socket or URL. */
  unreachable: 3,
  /** A restore finished with some endpoints failed (others are live or dead as reported). */
  partial: 4,
  /** A restore failed as a whole or was cancelled. */
  restoreFailed: 5,
  /** The configuration is invalid (`rewire agent`); systemd does not restart on it. */
  config: 6,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodeHelp: readonly [number, string][] = [
  [ExitCode.ok, 'success'],
  [ExitCode.failure, 'failure: the agent refused the request, or a local step failed'],
  [ExitCode.usage, 'usage error: unknown command or flag, missing argument'],
  [ExitCode.unreachable, 'agent unreachable: nothing answers at the API socket or URL'],
  [ExitCode.partial, 'restore partially failed: some endpoints failed'],
  [ExitCode.restoreFailed, 'restore failed as a whole, or was cancelled'],
  [ExitCode.config, 'invalid configuration'],
];
