/**
 * Shared pieces of the wire tests: a real reactor and non-blocking Unix socket pairs for each
 * test, closed after it, reads that wait through the reactor, and recognisable test bytes.
 */
import { afterEach, beforeEach, expect } from 'bun:test';

import { close, recv, socketpair } from '../../ffi/index.ts';
import { Reactor } from '../../src/reactor/reactor.ts';
import { openFdCount } from '../helpers/cluster.ts';

export interface Sockets {
  /** This test's reactor. */
  readonly reactor: Reactor;
  /** A connected non-blocking stream pair, closed after the test. */
  pair(): [number, number];
  /** Closes one end now (the other end sees end-of-file); the test's end skips it. */
  close(fd: number): void;
}

/**
 * A reactor and socket pairs per test. Everything is closed after each test, which then fails
 * if this process has more fds open than before it.
 */
export function socketsPerTest(): Sockets {
  let reactor: Reactor | undefined;
  let open: number[] = [];
  let fdsBefore = 0;
  beforeEach(() => {
    fdsBefore = openFdCount();
    reactor = new Reactor();
  });
  afterEach(async () => {
    for (const fd of open.splice(0)) {
      reactor!.forget(fd);
      close(fd);
    }
    await reactor!.close();
    expect(openFdCount()).toBeLessThanOrEqual(fdsBefore);
  });
  return {
    get reactor() {
      return reactor!;
    },
    pair() {
      const fds = socketpair('stream', { nonblock: true });
      open.push(...fds);
      return fds;
    },
    close(fd) {
      reactor!.forget(fd);
      close(fd);
      open = open.filter((x) => x !== fd);
    },
  };
}

/** Reads exactly `n` bytes from a non-blocking `fd`, waiting with `reactor` until `deadline`. */
export async function recvExactly(
  reactor: Reactor,
  fd: number,
  n: number,
  deadline: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = recv(fd, out.subarray(off));
    if (got === 0) throw new Error(`End of file after ${off} of ${n} bytes`);
    if (got > 0) off += got;
    else await reactor.readable(fd, deadline, `${n} bytes`);
  }
  return out;
}

/** Whatever is queued on `fd` right now, without waiting; empty when nothing is. */
export function recvNow(fd: number, max = 256): Uint8Array {
  const buf = new Uint8Array(max);
  const n = recv(fd, buf);
  return buf.subarray(0, Math.max(0, n));
}

/** Pseudo-random bytes from `seed`, so that a lost, repeated or reordered chunk shows. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
