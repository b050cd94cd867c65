/**
 * epoll and eventfd: the readiness interface the agent's I/O reactor waits on.
 *
 * struct epoll_event differs between architectures (arch.ts): packed on x86_64, aligned on
 * aarch64. The waiter owns its event buffer and reuses it for every wait.
 */
import { arch } from './arch.ts';
import { check, checkTolerating } from './call.ts';
import { EPOLL } from './constants.ts';
import { Errno } from './errno.ts';
import { sym } from './libc.ts';

/** epoll_create1(EPOLL_CLOEXEC). Returns the epoll fd, owned by the caller. */
export function epollCreate(): number {
  return check(sym.epoll_create1(EPOLL.CLOEXEC), { syscall: 'epoll_create1' });
}

/** One struct epoll_event, reused: epoll_ctl copies it before returning. */
const eventBuf = new Uint8Array(16);
const eventView = new DataView(eventBuf.buffer);

function encodeEvent(events: number, data: number): Uint8Array {
  eventView.setUint32(0, events >>> 0, true);
  eventView.setUint32(arch.epollEvent.dataOffset, data >>> 0, true);
  eventView.setUint32(arch.epollEvent.dataOffset + 4, Math.floor(data / 2 ** 32), true);
  return eventBuf.subarray(0, arch.epollEvent.size);
}

/** epoll_ctl(2). `data` (default: the fd) comes back with each event. */
export function epollCtl(
  epfd: number,
  op: 'add' | 'mod' | 'del',
  fd: number,
  events: number,
  data = fd,
): void {
  const code = op === 'add' ? EPOLL.CTL_ADD : op === 'mod' ? EPOLL.CTL_MOD : EPOLL.CTL_DEL;
  check(sym.epoll_ctl(epfd, code, fd, encodeEvent(events, data)), {
    syscall: 'epoll_ctl',
    fd: epfd,
    detail: `${op} fd ${fd}`,
  });
}

/** One ready fd: the `data` it was registered with, and the events. */
export interface ReadyEvent {
  data: number;
  events: number;
}

/** Waits on one epoll fd with a reused buffer. */
export class EpollWaiter {
  readonly #epfd: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #max: number;

  constructor(epfd: number, maxEvents = 256) {
    this.#epfd = epfd;
    this.#max = maxEvents;
    this.#buf = new Uint8Array(arch.epollEvent.size * maxEvents);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** epoll_wait(2) for at most `timeoutMs` (-1: no limit). An interrupted wait returns []. */
  wait(timeoutMs: number): ReadyEvent[] {
    const n = checkTolerating(
      sym.epoll_wait(this.#epfd, this.#buf, this.#max, timeoutMs),
      { syscall: 'epoll_wait', fd: this.#epfd },
      [Errno.EINTR],
    );
    const out: ReadyEvent[] = [];
    for (let i = 0; i < n; i++) {
      const base = i * arch.epollEvent.size;
      out.push({
        events: this.#view.getUint32(base, true),
        data: Number(this.#view.getBigUint64(base + arch.epollEvent.dataOffset, true)),
      });
    }
    return out;
  }
}

/** eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK. Returns the fd, owned by the caller. */
export function eventfdCreate(initial = 0): number {
  return check(sym.eventfd(initial, 0o2000000 | 0o4000), { syscall: 'eventfd' });
}

/** Adds `value` to an eventfd's counter. */
export function eventfdWrite(fd: number, value = 1): void {
  const buf = new BigUint64Array([BigInt(value)]);
  check(sym.write(fd, buf, 8), { syscall: 'write', fd, detail: 'eventfd' });
}

/** Reads and resets an eventfd's counter; 0 when it was already 0. */
export function eventfdRead(fd: number): number {
  const buf = new BigUint64Array(1);
  const ret = checkTolerating(sym.read(fd, buf, 8), { syscall: 'read', fd, detail: 'eventfd' }, [
    Errno.EAGAIN,
  ]);
  return ret < 0 ? 0 : Number(buf[0]);
}
