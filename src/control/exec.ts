/**
 * `rewire exec --manifest FILE -- CMD ARGS...`: restores this process's endpoints through the
 * local agent, puts each fd at its recorded number(s), and replaces itself with CMD, which
 * keeps this pid, so the program finds its sockets where they were (SPEC §3.9).
 *
 * Sequence: resolve CMD (fail early), restore, refuse to go on if any endpoint failed, move
 * the received fds above every target number, dup3 each to its targets (close-on-exec
 * cleared), set F_SETOWN to this pid where the recorded owner was the process itself, close
 * every other fd above 2 (unless kept), then execve.
 */
import { closeRange, close, dup3, dupAtLeast, execve, getpid, setOwner } from '../../ffi/index.ts';
import { RewireError } from '../errors.ts';
import { endpointKey } from '../model/ids.ts';
import type { Manifest } from '../model/types.ts';
import { restoreThroughAgent, sendReady, type DeliveredEndpoint } from './client.ts';

export interface ExecOptions {
  manifest: Manifest;
  socketPath: string;
  command: string[];
  /** Fds to leave open besides 0-2 and the restored ones. */
  keepFds: number[];
  /** Leave every fd open (do not close unnamed fds). */
  keepAll: boolean;
  deadlineMs: number;
  /**
   * Keep the control session open and put its socket at this fd number, so that the program
   * receives connections handed over later (a parent daemon receiving re-homed connections).
   */
  sessionFd?: number;
  /** Where progress and failures are printed. */
  report: (line: string) => void;
}

export class ExecError extends RewireError {
  override name = 'ExecError';
}

/**
 * Restores and execs. Returns only by throwing: ExecError (EEXEC_COMMAND, EEXEC_RESTORE) with
 * every failure listed in its message, and nothing started.
 */
export function restoreAndExec(options: ExecOptions): never {
  const [cmd, ...args] = options.command;
  if (!cmd) throw new ExecError('EUSAGE', 'Cannot exec: no command given after --');
  const path = cmd.includes('/') ? cmd : Bun.which(cmd);
  if (!path)
    throw new ExecError('EEXEC_COMMAND', `Cannot exec: command '${cmd}' not found in PATH`);

  const manifest = { ...options.manifest, pid: getpid() };
  const outcome = restoreThroughAgent(options.socketPath, manifest, {
    deadlineMs: options.deadlineMs,
    keepOpen: options.sessionFd !== undefined,
  });
  const failed = outcome.endpoints.filter((e) => e.result.status === 'failed');
  if (outcome.done.code || failed.length > 0) {
    for (const e of outcome.endpoints) if (e.fd !== undefined) close(e.fd);
    if (outcome.session !== undefined) close(outcome.session);
    throw new ExecError('EEXEC_RESTORE', restoreFailure(outcome.done, failed));
  }
  for (const e of outcome.endpoints.filter((x) => x.result.status === 'dead')) {
    options.report(
      `rewire exec: endpoint '${endpointKey(e.result.id)}' is dead (${e.result.code}): ${e.result.message}`,
    );
  }

  const placed = placeFds(manifest, outcome.endpoints);
  if (outcome.session !== undefined && options.sessionFd !== undefined) {
    if (placed.includes(options.sessionFd)) {
      throw new ExecError(
        'EUSAGE',
        `Cannot keep the session at fd ${options.sessionFd}: a restored socket is there`,
      );
    }
    dup3(outcome.session, options.sessionFd, false);
    if (outcome.session !== options.sessionFd) close(outcome.session);
    placed.push(options.sessionFd);
    sendReady(options.sessionFd);
  }
  if (!options.keepAll) closeOthers(new Set([...placed, ...options.keepFds]));
  execve(path, [cmd, ...args], process.env as Record<string, string>);
}

function restoreFailure(
  done: { code?: string; message?: string },
  failed: DeliveredEndpoint[],
): string {
  const lines = failed.map(
    (e) => `  ${endpointKey(e.result.id)}: ${e.result.code}: ${e.result.message}`,
  );
  const head = done.code
    ? `Cannot restore: ${done.code}: ${done.message}`
    : `Cannot restore: ${failed.length} endpoint(s) failed`;
  return [head, ...lines].join('\n');
}

/** Puts each delivered fd at its recorded numbers; returns the numbers now in use. */
function placeFds(manifest: Manifest, delivered: DeliveredEndpoint[]): number[] {
  const withFd = delivered.filter((d) => d.fd !== undefined);
  const targets = withFd.flatMap((d) => d.result.fds);
  const base = Math.max(2, ...targets) + 1;
  const high = withFd.map((d) => {
    const moved = dupAtLeast(d.fd!, base);
    close(d.fd!);
    return moved;
  });
  const owners = new Map(manifest.endpoints.map((e) => [endpointKey(e.id), e.fcntl?.owner ?? 0]));
  const selfAtCheckpoint = manifest.checkpointPid ?? manifest.process.pid;
  withFd.forEach((d, i) => {
    for (const target of d.result.fds) dup3(high[i]!, target, false);
    if (
      owners.get(endpointKey(d.result.id)) === selfAtCheckpoint &&
      d.result.fds[0] !== undefined
    ) {
      setOwner(d.result.fds[0], manifest.pid);
    }
  });
  for (const fd of high) close(fd);
  return targets;
}

/** Closes every fd above 2 that is not in `keep`. */
function closeOthers(keep: Set<number>): void {
  let from = 3;
  for (const fd of [...keep].filter((n) => n >= 3).sort((a, b) => a - b)) {
    if (fd > from) closeRange(from, fd - 1);
    from = fd + 1;
  }
  closeRange(from, 0xffffffff);
}
