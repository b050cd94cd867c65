/**
 * One restore: a process's manifest and the progress of each of its endpoints.
 *
 * Ownership of fds: a settled endpoint holds its restored fd (`task.fd`) until a session
 * takes it (`takeFd`), which moves ownership to the caller, or until the restore is disposed,
 * which closes every fd still held. An endpoint is settled once, by `settle`.
 */
import { randomUUID } from 'node:crypto';

import { close } from '../../ffi/index.ts';
import { RewireError } from '../errors.ts';
import type {
  EndpointProgress,
  EndpointState,
  RestoreState,
  RestoreView,
} from '../agent/handle.ts';
import type { Endpoint, EndpointId, Manifest } from '../model/types.ts';
import { endpointKey, processKey } from '../model/ids.ts';

export type How = 'remote' | 'local-pair' | 'unix-pair' | 'listen' | 'rehomed' | 'dead';

export interface Outcome {
  state: Exclude<EndpointState, 'pending'>;
  how?: How;
  fd?: number;
  code?: string;
  message?: string;
  peer?: EndpointId;
  peerNode?: bigint;
}

export class EndpointTask {
  readonly key: string;
  state: EndpointState = 'pending';
  how: How | undefined;
  fd: number | undefined;
  code: string | undefined;
  message: string | undefined;
  peer: EndpointId | undefined;
  peerNode: bigint | undefined;
  /** The last refusal seen while waiting, reported if the deadline passes. */
  lastProblem: string | undefined;
  /** The code of `lastProblem`, which becomes the endpoint's code if the deadline passes. */
  lastCode: string | undefined;
  settledAt: number | undefined;

  constructor(
    readonly endpoint: Endpoint,
    readonly restore: Restore,
  ) {
    this.key = endpointKey(endpoint.id);
    this.peer = endpoint.peer;
  }

  get settled(): boolean {
    return this.state !== 'pending';
  }

  /** Records the outcome once; a second call is ignored and its fd closed. */
  settle(outcome: Outcome): boolean {
    if (this.settled) {
      if (outcome.fd !== undefined) close(outcome.fd);
      return false;
    }
    this.state = outcome.state;
    this.how = outcome.how;
    this.fd = outcome.fd;
    this.code = outcome.code;
    this.message = outcome.message;
    if (outcome.peer) this.peer = outcome.peer;
    this.peerNode = outcome.peerNode;
    this.settledAt = Date.now();
    this.restore.onSettled(this);
    return true;
  }

  /** The process's pid at checkpoint and now, for F_SETOWN remapping. */
  pids(): { checkpoint: number; now: number } {
    const m = this.restore.manifest;
    return { checkpoint: m.checkpointPid ?? m.process.pid, now: m.pid };
  }

  /** Hands the held fd to the caller, who closes it from now on. */
  takeFd(): number | undefined {
    const fd = this.fd;
    this.fd = undefined;
    return fd;
  }

  progress(): EndpointProgress {
    return {
      id: this.key,
      peer: this.peer ? endpointKey(this.peer) : undefined,
      role: this.endpoint.role,
      state: this.state,
      how: this.how,
      code: this.code,
      message: this.message,
    };
  }
}

type Listener = (task: EndpointTask) => void;

export class Restore {
  readonly id = randomUUID();
  readonly processKey: string;
  readonly tasks: EndpointTask[];
  readonly startedAt = new Date();
  readonly deadline: number;
  finishedAt: Date | undefined;
  state: RestoreState = 'running';
  /** Whether a local session has claimed (or started) this restore. */
  claimed = false;
  readonly #listeners = new Set<Listener>();
  #unsettled: number;
  /** The state `end` is ending the restore in, while it settles the pending endpoints. */
  #ending: 'failed' | 'cancelled' | undefined;
  readonly #done: Array<() => void> = [];

  constructor(
    readonly manifest: Manifest,
    readonly placementVersion: bigint | null,
    deadlineMs: number,
  ) {
    this.processKey = processKey(manifest.process);
    this.deadline = Date.now() + deadlineMs;
    this.tasks = manifest.endpoints.map((e) => new EndpointTask(e, this));
    this.#unsettled = this.tasks.length;
  }

  get pending(): EndpointTask[] {
    return this.tasks.filter((t) => !t.settled);
  }

  /** Calls `listener` for every endpoint as it settles (and now, for those already settled). */
  subscribe(listener: Listener): () => void {
    for (const t of this.tasks) if (t.settled) listener(t);
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when every endpoint has settled or the restore was cancelled. */
  whenDone(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    return new Promise((resolve) => this.#done.push(resolve));
  }

  /**
   * Records that `task` settled. The restore's own state is updated first, so that listeners
   * told of the last endpoint see the restore finished.
   */
  onSettled(task: EndpointTask): void {
    this.#unsettled--;
    if (this.state === 'running' && this.#unsettled === 0) {
      const failed = this.tasks.some((t) => t.state === 'failed');
      this.#finish(this.#ending ?? (failed ? 'failed' : 'done'));
    }
    for (const l of this.#listeners) l(task);
  }

  /** Fails every pending endpoint with `code` and ends the restore as `state`. */
  end(state: 'failed' | 'cancelled', code: string, message: (t: EndpointTask) => string): void {
    this.#ending = state;
    for (const t of this.pending) {
      const why = t.lastProblem ? `${message(t)}; last problem: ${t.lastProblem}` : message(t);
      t.settle({
        state: 'failed',
        code: state === 'failed' ? (t.lastCode ?? code) : code,
        message: why,
      });
    }
    if (this.state === 'running') this.#finish(state);
  }

  /** Closes every fd still held. */
  dispose(): void {
    for (const t of this.tasks) {
      const fd = t.takeFd();
      if (fd !== undefined) close(fd);
    }
  }

  counts(): RestoreView['counts'] {
    const counts = { pending: 0, live: 0, dead: 0, failed: 0 };
    for (const t of this.tasks) counts[t.state]++;
    return counts;
  }

  view(): RestoreView {
    return {
      id: this.id,
      process: this.processKey,
      executable: this.manifest.executable,
      pid: this.manifest.pid,
      state: this.state,
      startedAt: this.startedAt.toISOString(),
      finishedAt: this.finishedAt?.toISOString(),
      placementVersion: this.placementVersion === null ? null : this.placementVersion.toString(),
      counts: this.counts(),
      endpoints: this.tasks.map((t) => t.progress()),
    };
  }

  #finish(state: RestoreState): void {
    this.state = state;
    this.finishedAt = new Date();
    for (const resolve of this.#done.splice(0)) resolve();
  }
}

/** The outcome of an endpoint that failed with `err`: its code when it has one, else `fallback`. */
export function failureOutcome(err: unknown, fallback: string): Outcome {
  const code = err instanceof RewireError ? err.code : fallback;
  return { state: 'failed', code, message: (err as Error).message };
}
