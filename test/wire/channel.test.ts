import { describe, expect, test } from 'bun:test';

import { MSG, recv, send } from '../../ffi/index.ts';
import { ProtocolError } from '../../src/errors.ts';
import { FrameChannel } from '../../src/wire/channel.ts';
import { frame } from '../../src/wire/framer.ts';
import { sessionOpening } from '../../src/wire/opening.ts';
import { PeerClosedError } from '../../src/wire/stream.ts';
import { rejection, watch } from '../helpers/waits.ts';
import { ascii, pattern, recvExactly, socketsPerTest, type Sockets } from './helpers.ts';

const sockets = socketsPerTest();

const MAX_FRAME = 4 * 1024 * 1024;
const MIB = 1024 * 1024;
const SOON_MS = 5000;

/** Two channels on the ends of one socket pair. */
function channels(s: Sockets, maxFrame = MAX_FRAME, writeTimeoutMs = SOON_MS) {
  const [x, y] = s.pair();
  return {
    a: new FrameChannel(s.reactor, x, maxFrame, writeTimeoutMs),
    b: new FrameChannel(s.reactor, y, maxFrame, writeTimeoutMs),
  };
}

/** Whether `fd` has nothing waiting to be read. */
function drained(fd: number): boolean {
  return recv(fd, new Uint8Array(1), MSG.PEEK | MSG.DONTWAIT) < 0;
}

/** Reads and drops `n` bytes from `fd`, waiting until `deadline`. */
async function discard(fd: number, n: number, deadline: number): Promise<void> {
  for (let left = n; left > 0; left -= Math.min(left, 64 * 1024)) {
    await recvExactly(sockets.reactor, fd, Math.min(left, 64 * 1024), deadline);
  }
}

describe('FrameChannel frames', () => {
  test('delivers frames in the order they were written', async () => {
    const { a, b } = channels(sockets);
    const bodies = [ascii('one'), new Uint8Array(0), ascii('three'), pattern(1000)];
    for (const body of bodies) a.write(body);

    const got: number[][] = [];
    for (let i = 0; i < bodies.length; i++) {
      got.push(Array.from(await b.next(Date.now() + SOON_MS, `frame ${i}`)));
    }

    expect(got).toEqual(bodies.map((body) => Array.from(body)));
  });

  test('cuts several frames out of one recv', async () => {
    const { a, b } = channels(sockets);
    a.write(ascii('alpha'));
    a.write(ascii('beta'));
    a.write(ascii('gamma'));

    const first = await b.next(Date.now() + SOON_MS, 'frame 1');

    expect(drained(b.fd)).toBe(true);
    expect(new TextDecoder().decode(first)).toBe('alpha');
    expect(new TextDecoder().decode(await b.next(Date.now() + SOON_MS, 'frame 2'))).toBe('beta');
    expect(new TextDecoder().decode(await b.next(Date.now() + SOON_MS, 'frame 3'))).toBe('gamma');
  });

  test('waits for a frame that has not arrived yet', async () => {
    const { a, b } = channels(sockets);
    const next = watch(b.next(Date.now() + SOON_MS, 'a late frame'));
    await Bun.sleep(30);
    expect(next.settled).toBe(false);

    a.write(ascii('late'));

    expect(new TextDecoder().decode(await next.promise)).toBe('late');
  });

  test('sends a 1 MiB frame through a full socket buffer while the peer reads it', async () => {
    const { a, b } = channels(sockets);
    const big = pattern(MIB, 3);

    a.write(big);
    a.write(ascii('after the big one'));
    const sent = watch(a.flushed(Date.now() + SOON_MS));
    await Bun.sleep(30);
    expect(sent.settled).toBe(false);

    const got = await b.next(Date.now() + SOON_MS, 'the big frame');
    const after = await b.next(Date.now() + SOON_MS, 'the frame after it');
    await sent.promise;

    expect(got.length).toBe(MIB);
    expect(Buffer.compare(got, big)).toBe(0);
    expect(new TextDecoder().decode(after)).toBe('after the big one');
  });

  test('keeps the order of small and large frames queued behind a full socket buffer', async () => {
    const { a, b } = channels(sockets);
    const sizes = [300_000, 1, 70_000, 0, 5, 250_000, 64 * 1024, 64 * 1024 + 1, 3];
    const bodies = sizes.map((size, i) => pattern(size, i + 1));

    for (const body of bodies) a.write(body);
    const got: Uint8Array[] = [];
    for (let i = 0; i < bodies.length; i++) got.push(await b.next(Date.now() + SOON_MS, 'a frame'));

    expect(got.map((body) => body.length)).toEqual(sizes);
    expect(got.every((body, i) => Buffer.compare(body, bodies[i]!) === 0)).toBe(true);
    await a.flushed(Date.now() + SOON_MS);
  });

  test('puts the prefix bytes before the frame', async () => {
    const [x, y] = sockets.pair();
    const writer = new FrameChannel(sockets.reactor, x, MAX_FRAME, SOON_MS);

    writer.write(ascii('hello'), sessionOpening());

    const got = await recvExactly(sockets.reactor, y, 20 + 4 + 5, Date.now() + SOON_MS);
    expect(Array.from(got)).toEqual([...sessionOpening(), 0, 0, 0, 5, ...ascii('hello')]);
    expect(drained(y)).toBe(true);
  });

  test('refuses a frame longer than maxFrameBytes with EFRAME_TOO_LARGE and fails', async () => {
    const [x, y] = sockets.pair();
    const reader = new FrameChannel(sockets.reactor, y, 64, SOON_MS);
    send(x, frame(new Uint8Array(65)));

    const err = await rejection(reader.next(Date.now() + SOON_MS, 'a session frame'));

    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe('EFRAME_TOO_LARGE');
    expect(err.message).toContain('length 65 is more than the limit of 64 bytes');
    expect(reader.failure).toBe(err);
  });

  test('takes a frame of exactly maxFrameBytes', async () => {
    const [x, y] = sockets.pair();
    const reader = new FrameChannel(sockets.reactor, y, 64, SOON_MS);
    send(x, frame(pattern(64)));

    expect(Array.from(await reader.next(Date.now() + SOON_MS, 'a frame'))).toEqual(
      Array.from(pattern(64)),
    );
  });
});

describe('FrameChannel failure', () => {
  test('next on a closed peer throws EPEER_CLOSED, fails the channel and tells listeners once', async () => {
    const [x, y] = sockets.pair();
    const ch = new FrameChannel(sockets.reactor, y, MAX_FRAME, SOON_MS);
    const told: Error[] = [];
    ch.onFail((err) => told.push(err));
    sockets.close(x);

    const err = await rejection(ch.next(Date.now() + SOON_MS, 'the Join frame'));

    expect(err).toBeInstanceOf(PeerClosedError);
    expect(err.code).toBe('EPEER_CLOSED');
    expect(err.message).toBe('Connection closed by the peer while reading the Join frame');
    expect(ch.failure).toBe(err);
    expect(told).toEqual([err]);

    ch.fail(new Error('a later failure'));
    expect(await rejection(ch.next(Date.now() + SOON_MS, 'another frame'))).toBe(err);
    expect(ch.failure).toBe(err);
    expect(told).toEqual([err]);
  });

  test('a peer closing while next waits fails the waiting read', async () => {
    const [x, y] = sockets.pair();
    const ch = new FrameChannel(sockets.reactor, y, MAX_FRAME, SOON_MS);
    const next = watch(ch.next(Date.now() + SOON_MS, 'a frame'));
    await Bun.sleep(20);
    expect(next.settled).toBe(false);

    sockets.close(x);

    expect((await rejection(next.promise)).code).toBe('EPEER_CLOSED');
    expect(ch.failure?.message).toContain('a frame');
  });

  test('a listener added after the failure is told at once', async () => {
    const [x, y] = sockets.pair();
    const ch = new FrameChannel(sockets.reactor, y, MAX_FRAME, SOON_MS);
    sockets.close(x);
    const err = await rejection(ch.next(Date.now() + SOON_MS, 'a frame'));

    const told: Error[] = [];
    ch.onFail((e) => told.push(e));

    expect(told).toEqual([err]);
  });

  test('frames that arrived before the peer closed are still read, then EPEER_CLOSED', async () => {
    const { a, b } = channels(sockets);
    a.write(ascii('last words'));
    sockets.close(a.fd);

    const body = await b.next(Date.now() + SOON_MS, 'a frame');

    expect(new TextDecoder().decode(body)).toBe('last words');
    expect((await rejection(b.next(Date.now() + SOON_MS, 'a frame'))).code).toBe('EPEER_CLOSED');
  });

  test('a read that passes its deadline rejects with EDEADLINE', async () => {
    const { b } = channels(sockets);

    const err = await rejection(b.next(Date.now() + 50, 'a frame'));

    expect(err.code).toBe('EDEADLINE');
  });
});

describe('FrameChannel.flushed', () => {
  test('resolves at once when everything went out with one send', async () => {
    const { a } = channels(sockets);
    a.write(ascii('small'));

    await a.flushed(Date.now() + SOON_MS);

    expect(a.failure).toBeUndefined();
  });

  test('resolves only after a reader drains a large write', async () => {
    const [x, y] = sockets.pair();
    const writer = new FrameChannel(sockets.reactor, x, MAX_FRAME, SOON_MS);
    writer.write(pattern(MIB));

    const flushed = watch(writer.flushed(Date.now() + SOON_MS));
    await Bun.sleep(50);
    expect(flushed.settled).toBe(false);
    await discard(y, 4 + MIB, Date.now() + SOON_MS);

    await flushed.promise;
    expect(flushed.settled).toBe(true);
    expect(drained(y)).toBe(true);
  });

  test('rejects with EDEADLINE by its deadline when nobody reads', async () => {
    const [x] = sockets.pair();
    const writer = new FrameChannel(sockets.reactor, x, MAX_FRAME, 3000);
    writer.write(pattern(MIB));
    const started = Date.now();

    const err = await rejection(writer.flushed(started + 200));

    expect(err.code).toBe('EDEADLINE');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a write that finds no room before writeTimeoutMs fails the channel', async () => {
    const [x] = sockets.pair();
    const writer = new FrameChannel(sockets.reactor, x, MAX_FRAME, 100);
    const told: Error[] = [];
    writer.onFail((err) => told.push(err));

    writer.write(pattern(MIB));
    const err = await rejection(writer.flushed(Date.now() + SOON_MS));

    expect(err.code).toBe('EDEADLINE');
    expect(writer.failure).toBe(err);
    expect(told).toEqual([err]);
  });
});
