/**
 * A listening socket watched one-shot: one report per wait, an event that came while nobody
 * waited kept for the next wait, and a drained socket that blocks the next wait again.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';

import {
  acceptFd,
  bind,
  close,
  connect,
  getSockName,
  listen,
  socket,
  socketpair,
  type SockAddr,
} from '../../ffi/index.ts';
import { Reactor } from '../../src/reactor/reactor.ts';
import { openFdCount } from '../helpers/cluster.ts';
import { rejection, settlesAtOnce } from '../helpers/waits.ts';

const SOON_MS = 5000;

let reactor: Reactor;
let opened: number[] = [];
let fdsBefore = 0;

beforeEach(() => {
  fdsBefore = openFdCount();
  reactor = new Reactor();
});

afterEach(async () => {
  for (const fd of opened.splice(0)) {
    reactor.forget(fd);
    close(fd);
  }
  await reactor.close();
  expect(openFdCount()).toBeLessThanOrEqual(fdsBefore);
});

/** `fd`, closed after the test. */
function owned(fd: number): number {
  opened.push(fd);
  return fd;
}

/** A non-blocking listening socket on 127.0.0.1, port 0, and its address. */
function listener(): { fd: number; address: SockAddr } {
  const fd = owned(socket('inet', 'stream', { nonblock: true }));
  bind(fd, { family: 'inet', address: '127.0.0.1', port: 0 });
  listen(fd, 16);
  return { fd, address: getSockName(fd) };
}

/** Starts a connection to `address` from a non-blocking client socket. */
function dial(address: SockAddr): void {
  connect(owned(socket('inet', 'stream', { nonblock: true })), address);
}

/** Accepts every connection waiting on `fd`; returns how many there were. */
function acceptAll(fd: number): number {
  let count = 0;
  for (let conn = acceptFd(fd); conn >= 0; conn = acceptFd(fd)) {
    owned(conn);
    count++;
  }
  return count;
}

describe('watchOneShot', () => {
  test('a wait resolves when a connection arrives', async () => {
    const { fd, address } = listener();
    reactor.watchOneShot(fd);
    const wait = reactor.readable(fd, Date.now() + SOON_MS, 'a connection');
    expect(await settlesAtOnce(wait)).toBe(false);

    dial(address);

    await wait;
    expect(acceptAll(fd)).toBe(1);
  });

  test('a wait with nothing arriving rejects with EDEADLINE', async () => {
    const { fd } = listener();
    reactor.watchOneShot(fd);

    const err = await rejection(reactor.readable(fd, Date.now() + 50, 'a connection'));

    expect(err.code).toBe('EDEADLINE');
    expect(err.message).toBe(`Timed out waiting for a connection on fd ${fd}`);
  });

  test('connections that arrive while nobody waits are kept for the next wait', async () => {
    const { fd, address } = listener();
    reactor.watchOneShot(fd);
    const armed = await rejection(reactor.readable(fd, Date.now() + 30, 'a connection'));
    expect(armed.code).toBe('EDEADLINE');

    for (let i = 0; i < 3; i++) dial(address);
    // Nothing can be asked about the poller thread's report: give it time to arrive.
    await Bun.sleep(200);

    expect(await settlesAtOnce(reactor.readable(fd, Date.now() + SOON_MS, 'a connection'))).toBe(
      true,
    );
    expect(acceptAll(fd)).toBe(3);
  });

  test('a drained socket blocks the next wait until a new connection arrives', async () => {
    const { fd, address } = listener();
    reactor.watchOneShot(fd);
    const first = reactor.readable(fd, Date.now() + SOON_MS, 'a connection');
    for (let i = 0; i < 3; i++) dial(address);
    await first;
    expect(acceptAll(fd)).toBe(3);

    const quiet = await rejection(reactor.readable(fd, Date.now() + 100, 'a connection'));
    expect(quiet.code).toBe('EDEADLINE');

    const next = reactor.readable(fd, Date.now() + SOON_MS, 'a connection');
    expect(await settlesAtOnce(next)).toBe(false);
    dial(address);
    await next;
    expect(acceptAll(fd)).toBe(1);
  });

  test('connections left unaccepted wake the next wait', async () => {
    const { fd, address } = listener();
    reactor.watchOneShot(fd);
    const first = reactor.readable(fd, Date.now() + SOON_MS, 'a connection');
    dial(address);
    await first;

    dial(address);
    await reactor.readable(fd, Date.now() + SOON_MS, 'a connection');

    expect(acceptAll(fd)).toBe(2);
  });

  test('refuses an fd watched one-shot already', () => {
    const { fd } = listener();
    reactor.watchOneShot(fd);

    expect(() => reactor.watchOneShot(fd)).toThrow(
      `Cannot watch fd ${fd} one-shot: it is watched already`,
    );
  });

  test('refuses an fd the reactor already watches for reading and writing', async () => {
    const [x] = socketpair('stream', { nonblock: true }).map(owned) as [number, number];
    await rejection(reactor.readable(x, Date.now() + 20, 'data'));

    expect(() => reactor.watchOneShot(x)).toThrow(
      `Cannot watch fd ${x} one-shot: it is watched already`,
    );
  });

  test('forget rejects a pending wait on a one-shot fd', async () => {
    const { fd } = listener();
    reactor.watchOneShot(fd);
    const wait = reactor.readable(fd, Date.now() + SOON_MS, 'a connection');

    reactor.forget(fd);

    const err = await rejection(wait);
    expect(err.code).toBe('EDEADLINE');
    expect(err.message).toBe(`Stopped waiting on fd ${fd}: it is being closed`);
  });
});
