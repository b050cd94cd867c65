/**
 * The agent's readiness reactor for raw fds. The agent does its socket I/O itself, with
 * non-blocking libc calls on fds it owns (it must never read a byte past a handshake, which
 * rules out Bun's buffered sockets); this reactor tells it when an fd is worth trying again.
 *
 * A poller thread (ffi/epoll-worker.ts) blocks in epoll_wait and posts ready fds here. An fd
 * is registered once, edge-triggered, for reading and writing; an edge that arrives while
 * nobody waits is remembered, so the next wait returns at once and the caller tries its I/O
 * again (the usual edge-triggered rule: wait only after an EAGAIN). Every wait has a deadline
 * and rejects with a DeadlineError when it passes. Call `forget(fd)` before closing an fd that was ever waited on:
 * a closed fd stays registered while a dup of it lives (e.g. in the process it was handed to).
 */
import { EPOLL, epollCreate, epollCtl, close as closeFd } from '../../ffi/index.ts';
import { DeadlineError } from '../errors.ts';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The longest delay a timer takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What is known about one registered fd. */
interface FdState {
  read?: Waiter;
  write?: Waiter;
  /** Edges seen while nobody waited. */
  readReady: boolean;
  writeReady: boolean;
  /** Registered for one read event at a time (see `watchOneShot`). */
  oneShot?: boolean;
  /** A one-shot fd's event is armed. */
  armed?: boolean;
  /** A one-shot fd is in the epoll set. */
  registered?: boolean;
}

const READ = EPOLL.IN | EPOLL.RDHUP | EPOLL.ERR | EPOLL.HUP;
const WRITE = EPOLL.OUT | EPOLL.ERR | EPOLL.HUP;
const INTEREST = EPOLL.IN | EPOLL.OUT | EPOLL.RDHUP | EPOLL.ET;
const ONE_READ = EPOLL.IN | EPOLL.ONESHOT;

export class Reactor {
  readonly #epfd: number;
  readonly #worker: Worker;
  readonly #fds = new Map<number, FdState>();
  #closed = false;
  #broken: string | undefined;

  constructor() {
    this.#epfd = epollCreate();
    this.#worker = new Worker(pollerUrl());
    this.#worker.onmessage = (event: MessageEvent<Float64Array>) => this.#dispatch(event.data);
    this.#worker.addEventListener('error', (event) => this.#fail((event as ErrorEvent).message));
    this.#worker.postMessage({ epfd: this.#epfd });
    this.#worker.unref();
  }

  /** Resolves when `fd` may be readable (or has an error or hang-up to report). */
  readable(fd: number, deadline: number, what = 'data'): Promise<void> {
    return this.#wait(fd, 'read', deadline, what);
  }

  /** Resolves when `fd` may be writable (or has an error to report). */
  writable(fd: number, deadline: number, what = 'room to write'): Promise<void> {
    return this.#wait(fd, 'write', deadline, what);
  }

  /**
   * Watches `fd` for reading only, one event per wait: the poller reports it once and then not
   * again until the next wait arms it. For a busy listening socket whose owner drains it at
   * its own pace, this turns a wake-up per arriving connection into one per drained batch.
   */
  watchOneShot(fd: number): void {
    if (this.#fds.has(fd)) throw new Error(`Cannot watch fd ${fd} one-shot: it is watched already`);
    this.#fds.set(fd, { readReady: false, writeReady: false, oneShot: true, armed: false });
  }

  /** Stops watching `fd`; pending waits on it are rejected. Call before closing the fd. */
  forget(fd: number): void {
    const state = this.#fds.get(fd);
    if (!state) return;
    this.#fds.delete(fd);
    for (const w of [state.read, state.write]) {
      if (!w) continue;
      clearTimeout(w.timer);
      w.reject(new DeadlineError(`Stopped waiting on fd ${fd}: it is being closed`));
    }
    try {
      epollCtl(this.#epfd, 'del', fd, 0);
    } catch {
      // The fd was already closed and so left the epoll set by itself.
    }
  }

  /**
   * Stops the poller thread and closes the epoll fd. Resolves once the thread is gone, so that
   * every fd the thread held is closed too.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of [...this.#fds.keys()]) this.forget(fd);
    const exited = new Promise<void>((resolve) =>
      this.#worker.addEventListener('close', () => resolve()),
    );
    this.#worker.terminate();
    await Promise.race([exited, Bun.sleep(2000)]);
    closeFd(this.#epfd);
  }

  #state(fd: number): FdState {
    let state = this.#fds.get(fd);
    if (state) return state;
    epollCtl(this.#epfd, 'add', fd, INTEREST);
    state = { readReady: false, writeReady: false };
    this.#fds.set(fd, state);
    return state;
  }

  #wait(fd: number, dir: 'read' | 'write', deadline: number, what: string): Promise<void> {
    if (this.#closed)
      return Promise.reject(new DeadlineError('Cannot wait: the reactor is closed'));
    if (this.#broken) return Promise.reject(new DeadlineError(this.#broken));
    let state: FdState;
    try {
      state = this.#state(fd);
    } catch (err) {
      // An fd epoll cannot watch (closed, or a regular file): the wait fails, it does not throw.
      return Promise.reject(err as Error);
    }
    const flag = dir === 'read' ? 'readReady' : 'writeReady';
    if (state[flag]) {
      state[flag] = false;
      return Promise.resolve();
    }
    if (state.oneShot && !state.armed) {
      try {
        epollCtl(this.#epfd, state.registered ? 'mod' : 'add', fd, ONE_READ);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      state.registered = true;
      state.armed = true;
    }
    if (state[dir]) {
      return Promise.reject(new Error(`Cannot wait to ${dir} fd ${fd}: another wait is pending`));
    }
    return new Promise<void>((resolve, reject) => {
      // An infinite deadline (a kept-open session waiting for its process to go away) has no
      // timer; every other wait has one.
      const timer = Number.isFinite(deadline)
        ? setTimeout(
            () => {
              if (state[dir]?.timer === timer) delete state[dir];
              reject(new DeadlineError(`Timed out waiting for ${what} on fd ${fd}`));
            },
            Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())),
          )
        : undefined;
      state[dir] = { resolve, reject, timer };
    });
  }

  /** The poller thread failed: nothing will wake a wait again, so every wait fails now. */
  #fail(reason: string): void {
    this.#broken = `Cannot wait on sockets: the poller thread failed: ${reason}`;
    for (const [fd, state] of this.#fds) {
      for (const w of [state.read, state.write]) {
        if (!w) continue;
        clearTimeout(w.timer);
        w.reject(new DeadlineError(`${this.#broken} (fd ${fd})`));
      }
      delete state.read;
      delete state.write;
    }
  }

  #dispatch(flat: Float64Array): void {
    for (let i = 0; i < flat.length; i += 2) {
      const state = this.#fds.get(flat[i]!);
      if (!state) continue;
      const events = flat[i + 1]!;
      if (state.oneShot) state.armed = false;
      if (events & READ) this.#wake(state, 'read', 'readReady');
      if (events & WRITE) this.#wake(state, 'write', 'writeReady');
    }
  }

  #wake(state: FdState, dir: 'read' | 'write', flag: 'readReady' | 'writeReady'): void {
    const w = state[dir];
    if (!w) {
      state[flag] = true;
      return;
    }
    delete state[dir];
    clearTimeout(w.timer);
    w.resolve();
  }
}

/**
 * Where the poller thread's code is. In a compiled executable it is an entry point of its own
 * (build/build.ts adds it), found by its path from the project root; run from source, it is the
 * file beside this layer.
 */
function pollerUrl(): string {
  if (Bun.main.startsWith('/$bunfs/')) return './ffi/epoll-worker.ts';
  return new URL('../../ffi/epoll-worker.ts', import.meta.url).href;
}
