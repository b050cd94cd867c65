/**
 * A one-line progress bar on stderr, drawn only on a terminal and only once an operation has
 * taken more than a moment, so quick restores print nothing but their result.
 */
import type { Io } from './io.ts';

const delayMs = 400;

export class ProgressBar {
  readonly #start: number;
  #drawn = false;

  constructor(
    private readonly io: Io,
    private readonly label: string,
    /** Milliseconds since some fixed point (a parameter for tests). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#start = now();
  }

  /** Redraws the bar with `done` of `total` finished. */
  update(done: number, total: number, detail = ''): void {
    const elapsed = this.now() - this.#start;
    if (!this.io.stderrTty || elapsed < delayMs) return;

    const width = Math.max(10, Math.min(40, this.io.columns - 50));
    const filled = total === 0 ? width : Math.round((done / total) * width);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    const time = `${(elapsed / 1000).toFixed(1)}s`;
    this.io.errRaw(`\r\x1b[K${this.label} [${bar}] ${done}/${total} ${detail} ${time}`);
    this.#drawn = true;
  }

  /** Removes the bar, leaving the cursor at the start of an empty line. */
  clear(): void {
    if (this.#drawn) this.io.errRaw('\r\x1b[K');
    this.#drawn = false;
  }
}
