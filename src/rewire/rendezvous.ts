/**
 * Where two things that belong together meet, whichever comes first: an agent's data
 * connection (found by its ticket) and the offer that names it. A value put before anyone
 * takes it is held until its expiry; a take waits until its deadline. Values never taken are
 * given to `dispose` (which closes the fd), at expiry or on `clear`. At most `maxHeld` values
 * are held at once: beyond that `put` refuses, so strangers cannot pile up fds. Deadlines and
 * expiries are checked every 100 ms, so a wait may last up to that much longer.
 */
import { CancelledError, DeadlineError, ProtocolError } from '../errors.ts';

interface Held<V> {
  value: V;
  expires: number;
}

interface Waiter<V> {
  resolve: (value: V) => void;
  reject: (err: Error) => void;
  expires: number;
  what: string;
}

const SWEEP_MS = 100;

export class Rendezvous<V> {
  readonly #held = new Map<string, Held<V>>();
  readonly #waiting = new Map<string, Waiter<V>>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly dispose: (value: V) => void,
    readonly maxHeld: number,
  ) {}

  get heldCount(): number {
    return this.#held.size;
  }

  get waitingCount(): number {
    return this.#waiting.size;
  }

  /**
   * Gives `value` to whoever takes `key`, or holds it until `expires`. Returns false, taking
   * nothing, when the key is held already or the limit is reached: the caller disposes.
   */
  put(key: string, value: V, expires: number): boolean {
    const waiter = this.#waiting.get(key);
    if (waiter) {
      this.#waiting.delete(key);
      waiter.resolve(value);
      return true;
    }
    if (this.#held.has(key) || this.#held.size >= this.maxHeld) return false;
    this.#held.set(key, { value, expires });
    this.#sweep();
    return true;
  }

  /** The value held under `key`, taken now, or undefined when none is held. */
  tryTake(key: string): V | undefined {
    const held = this.#held.get(key);
    if (!held) return undefined;
    this.#held.delete(key);
    return held.value;
  }

  /** The value put under `key`, now or by `deadline` (then a DeadlineError naming `what`). */
  take(key: string, deadline: number, what: string): Promise<V> {
    const held = this.#held.get(key);
    if (held) {
      this.#held.delete(key);
      return Promise.resolve(held.value);
    }
    if (this.#waiting.has(key)) {
      return Promise.reject(
        new ProtocolError(`Cannot wait for ${what}: something waits for it already`),
      );
    }
    return new Promise<V>((resolve, reject) => {
      this.#waiting.set(key, { resolve, reject, expires: deadline, what });
      this.#sweep();
    });
  }

  /** Drops `key`: a held value is disposed, a waiting take is rejected with `reason`. */
  cancel(key: string, reason = 'it was cancelled'): void {
    const held = this.#held.get(key);
    if (held) {
      this.#held.delete(key);
      this.dispose(held.value);
    }
    const waiter = this.#waiting.get(key);
    if (waiter) {
      this.#waiting.delete(key);
      waiter.reject(new CancelledError(`Stopped waiting for ${waiter.what}: ${reason}`));
    }
  }

  /** Disposes every held value and rejects every waiting take. */
  clear(reason: string): void {
    for (const key of [...this.#held.keys(), ...this.#waiting.keys()]) this.cancel(key, reason);
    this.#stopSweeping();
  }

  /** Expires what is past its time; runs every SWEEP_MS while anything is held or waiting. */
  #sweep(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const [key, h] of this.#held) {
        if (h.expires > now) continue;
        this.#held.delete(key);
        this.dispose(h.value);
      }
      for (const [key, w] of this.#waiting) {
        if (w.expires > now) continue;
        this.#waiting.delete(key);
        w.reject(new DeadlineError(`Timed out waiting for ${w.what}`));
      }
      if (this.#held.size === 0 && this.#waiting.size === 0) this.#stopSweeping();
    }, SWEEP_MS);
    this.#sweeper.unref();
  }

  #stopSweeping(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
