/**
 * The agent's readiness reactor for raw fds. The agent does its socket I/O itself, with
 * non-blocking libc calls on fds it owns (it must never read a byte past a handshake, which
 * rules out Bun's buffered sockets); this reactor tells it when an fd is worth trying again.
 *
 * A poller thread (ffi/epoll-worker.ts) blocks in epoll_wait and posts ready fds here. Each
 * wait arms its fd with EPOLLONESHOT; every wait has a deadline and rejects with a
 * DeadlineError when it passes. Call `forget(fd)` before closing an fd that was ever waited on:
 * a closed fd stays registered while a dup of it lives (e.g. in the process it was handed to).
 */
import { EPOLL, epollCreate, epollCtl, close as closeFd } from '../../ffi/index.ts';
import { DeadlineError } from '../errors.ts';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The waits pending on one fd: at most one for reading and one for writing. */
interface FdWaits {
  read?: Waiter;
  write?: Waiter;
}

const READ = EPOLL.IN | EPOLL.RDHUP;
const WRITE = EPOLL.OUT;
const FAILURE = EPOLL.ERR | EPOLL.HUP;

export class Reactor {
  readonly #epfd: number;
  readonly #worker: Worker;
  readonly #registered = new Set<number>();
  readonly #waits = new Map<number, FdWaits>();
  #closed = false;

  constructor() {
    this.#epfd = epollCreate();
    this.#worker = new Worker(new URL('../../ffi/epoll-worker.ts', import.meta.url).href);
    this.#worker.onmessage = (event: MessageEvent<Float64Array>) => this.#dispatch(event.data);
    this.#worker.postMessage({ epfd: this.#epfd });
    this.#worker.unref();
  }

  /** Resolves when `fd` is readable (or has an error or hang-up to report). */
  readable(fd: number, deadline: number, what = 'data'): Promise<void> {
    return this.#wait(fd, 'read', deadline, what);
  }

  /** Resolves when `fd` is writable (or has an error to report). */
  writable(fd: number, deadline: number, what = 'room to write'): Promise<void> {
    return this.#wait(fd, 'write', deadline, what);
  }

  /** Stops watching `fd`; pending waits on it are rejected. Call before closing the fd. */
  forget(fd: number): void {
    const waits = this.#waits.get(fd);
    if (waits) {
      this.#waits.delete(fd);
      for (const w of [waits.read, waits.write]) {
        if (!w) continue;
        clearTimeout(w.timer);
        w.reject(new DeadlineError(`Stopped waiting on fd ${fd}: it is being closed`));
      }
    }
    if (!this.#registered.delete(fd)) return;
    try {
      epollCtl(this.#epfd, 'del', fd, 0);
    } catch {
      // The fd was already closed and so left the epoll set by itself.
    }
  }

  /** Stops the poller thread and closes the epoll fd. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of [...this.#waits.keys()]) this.forget(fd);
    this.#worker.postMessage({ stop: true });
    setTimeout(() => this.#worker.terminate(), 300).unref();
    closeFd(this.#epfd);
  }

  #wait(fd: number, dir: 'read' | 'write', deadline: number, what: string): Promise<void> {
    if (this.#closed)
      return Promise.reject(new DeadlineError('Cannot wait: the reactor is closed'));
    const waits = this.#waits.get(fd) ?? {};
    if (waits[dir]) {
      return Promise.reject(new Error(`Cannot wait to ${dir} fd ${fd}: another wait is pending`));
    }
    return new Promise<void>((resolve, reject) => {
      const ms = Math.max(0, deadline - Date.now());
      const timer = setTimeout(() => {
        const current = this.#waits.get(fd);
        if (current?.[dir]?.timer === timer) delete current[dir];
        reject(new DeadlineError(`Timed out waiting for ${what} on fd ${fd}`));
      }, ms);
      waits[dir] = { resolve, reject, timer };
      this.#waits.set(fd, waits);
      this.#arm(fd, waits);
    });
  }

  #arm(fd: number, waits: FdWaits): void {
    const mask = (waits.read ? READ : 0) | (waits.write ? WRITE : 0) | EPOLL.ONESHOT;
    if (this.#registered.has(fd)) {
      epollCtl(this.#epfd, 'mod', fd, mask);
      return;
    }
    epollCtl(this.#epfd, 'add', fd, mask);
    this.#registered.add(fd);
  }

  #dispatch(flat: Float64Array): void {
    for (let i = 0; i < flat.length; i += 2) {
      const fd = flat[i]!;
      const events = flat[i + 1]!;
      const waits = this.#waits.get(fd);
      if (!waits) continue;
      const failed = (events & FAILURE) !== 0;
      if (waits.read && (failed || events & READ)) this.#wake(waits, 'read');
      if (waits.write && (failed || events & WRITE)) this.#wake(waits, 'write');
      if (waits.read || waits.write) this.#arm(fd, waits);
      else this.#waits.delete(fd);
    }
  }

  #wake(waits: FdWaits, dir: 'read' | 'write'): void {
    const w = waits[dir]!;
    delete waits[dir];
    clearTimeout(w.timer);
    w.resolve();
  }
}
