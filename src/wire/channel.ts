/**
 * A framed, full-duplex channel on a non-blocking fd that the agent keeps for itself (a
 * session between two agents; never a connection handed to a process, so reading ahead is
 * allowed). Reads take whatever has arrived and cut it into frames; writes are queued and go
 * out in order, usually with one send and no wait.
 *
 * Every wait has a deadline. A write that cannot finish by its deadline, a read error, or the
 * peer closing fails the channel: `failure` says why and `onFail` is told once.
 */
import { recv, send } from '../../ffi/index.ts';
import { DeadlineError } from '../errors.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { FRAME_HEADER, FrameReader, writeLength } from './framer.ts';
import { PeerClosedError } from './stream.ts';

const READ_CHUNK = 64 * 1024;

export class FrameChannel {
  readonly #reader: FrameReader;
  readonly #ready: Uint8Array[] = [];
  readonly #scratch = new Uint8Array(READ_CHUNK);
  readonly #outbox: Uint8Array[] = [];
  #writing = false;
  #failure: Error | undefined;
  #failListeners: Array<(err: Error) => void> = [];
  #drainWaiters: Array<() => void> = [];

  constructor(
    readonly reactor: Reactor,
    readonly fd: number,
    maxFrameBytes: number,
    /** How long a queued write may wait for room before the channel fails. */
    readonly writeTimeoutMs: number,
  ) {
    this.#reader = new FrameReader(maxFrameBytes);
  }

  /** The longest frame taken from the peer (raised once the peer has proved the key). */
  get maxFrameBytes(): number {
    return this.#reader.maxBytes;
  }

  set maxFrameBytes(bytes: number) {
    this.#reader.maxBytes = bytes;
  }

  /** Why the channel failed, once it has. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Calls `listener` once when the channel fails (at once if it has). */
  onFail(listener: (err: Error) => void): void {
    if (this.#failure) listener(this.#failure);
    else this.#failListeners.push(listener);
  }

  /**
   * The next frame's body, waiting for it until `deadline`.
   * @throws {PeerClosedError} when the peer closed first; the read's own error otherwise
   */
  async next(deadline: number, what: string): Promise<Uint8Array> {
    for (;;) {
      const ready = this.#ready.shift();
      if (ready) return ready;
      if (this.#failure) throw this.#failure;
      let n: number;
      try {
        n = recv(this.fd, this.#scratch);
        if (n === 0) throw new PeerClosedError(what);
        if (n > 0)
          for (const body of this.#reader.push(this.#scratch.subarray(0, n)))
            this.#ready.push(body);
      } catch (err) {
        this.fail(err as Error);
        throw err;
      }
      if (n < 0) {
        try {
          await this.reactor.readable(this.fd, deadline, what);
        } catch (err) {
          // A failure on the writing side ends this wait too: report that failure.
          throw this.#failure ?? err;
        }
      }
    }
  }

  /** Queues one frame (`body` with its length in front) after everything queued before it. */
  write(body: Uint8Array, prefix?: Uint8Array): void {
    if (this.#failure) return;
    const extra = prefix?.length ?? 0;
    const bytes = new Uint8Array(extra + FRAME_HEADER + body.length);
    if (prefix) bytes.set(prefix);
    writeLength(bytes.subarray(extra), body.length);
    bytes.set(body, extra + FRAME_HEADER);
    this.#outbox.push(bytes);
    if (!this.#writing) this.#flush();
  }

  /** Resolves when everything queued has been sent; rejects if the channel fails first. */
  async flushed(deadline: number): Promise<void> {
    while (this.#outbox.length > 0 && !this.#failure) {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new DeadlineError('Timed out sending a session frame');
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#drainWaiters.push(resolve);
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
    }
    if (this.#failure) throw this.#failure;
  }

  /**
   * Fails the channel with `err` (the first failure is kept) and ends its pending waits, which
   * report `err`; the owner closes the fd.
   */
  fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#outbox.length = 0;
    this.reactor.forget(this.fd);
    for (const listener of this.#failListeners.splice(0)) listener(err);
    for (const wake of this.#drainWaiters.splice(0)) wake();
  }

  /** Sends what is queued; waits (with a deadline) only when the socket buffer is full. */
  #flush(): void {
    while (this.#outbox.length > 0) {
      const head = this.#outbox[0]!;
      let n: number;
      try {
        n = send(this.fd, head);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (n === head.length) {
        this.#outbox.shift();
        continue;
      }
      if (n > 0) this.#outbox[0] = head.subarray(n);
      this.#writing = true;
      const deadline = Date.now() + this.writeTimeoutMs;
      this.reactor.writable(this.fd, deadline, 'room to write a session frame').then(
        () => {
          this.#writing = false;
          this.#flush();
          if (this.#outbox.length === 0) for (const wake of this.#drainWaiters.splice(0)) wake();
        },
        (err: Error) => {
          this.#writing = false;
          this.fail(err);
        },
      );
      return;
    }
  }
}
