import { describe, expect, test } from 'bun:test';

import { send, shutdown } from '../../ffi/index.ts';
import { ProtocolError } from '../../src/errors.ts';
import { sessionOpening, ticketOpening } from '../../src/wire/opening.ts';
import { readOpening, sendAll } from '../../src/wire/stream.ts';
import { rejection, watch } from '../helpers/waits.ts';
import { ascii, pattern, recvExactly, recvNow, socketsPerTest } from './helpers.ts';

const sockets = socketsPerTest();

const ticket = pattern(16, 7);

/** How long a read may take when its bytes are all there (or it must fail at once). */
const SOON_MS = 3000;

describe('readOpening', () => {
  test('reads a session record', async () => {
    const [dialer, acceptor] = sockets.pair();
    send(dialer, sessionOpening());

    const opening = await readOpening(sockets.reactor, acceptor, Date.now() + SOON_MS);

    expect(opening).toEqual({ kind: 'session' });
  });

  test('reads a record that arrives in two pieces, waiting for the second', async () => {
    const [dialer, acceptor] = sockets.pair();
    const record = ticketOpening(ticket);
    send(dialer, record.subarray(0, 3));

    const read = watch(readOpening(sockets.reactor, acceptor, Date.now() + SOON_MS));
    await Bun.sleep(50);
    expect(read.settled).toBe(false);
    send(dialer, record.subarray(3));

    const opening = await read.promise;
    expect(opening.kind).toBe('ticket');
    expect(opening.kind === 'ticket' && Array.from(opening.ticket)).toEqual(Array.from(ticket));
  });

  test('leaves every byte after the record unread in the socket', async () => {
    const [dialer, acceptor] = sockets.pair();
    const after = ascii('first bytes of the process\r\n');
    const sent = new Uint8Array(20 + after.length);
    sent.set(ticketOpening(ticket));
    sent.set(after, 20);
    send(dialer, sent);

    const opening = await readOpening(sockets.reactor, acceptor, Date.now() + SOON_MS);

    expect(opening.kind).toBe('ticket');
    expect(Array.from(recvNow(acceptor))).toEqual(Array.from(after));
  });

  test("rejects a stranger's first bytes at once with EPROTOCOL, without waiting for 20", async () => {
    const [stranger, acceptor] = sockets.pair();
    send(stranger, ascii('GET / HTTP/1.1'));
    const started = Date.now();

    const err = await rejection(readOpening(sockets.reactor, acceptor, started + 10_000));

    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe('EPROTOCOL');
    expect(Date.now() - started).toBeLessThan(SOON_MS);
  });

  test('rejects a good start that goes wrong on its third byte, before the rest arrives', async () => {
    const [stranger, acceptor] = sockets.pair();
    send(stranger, ascii('RW'));
    const read = watch(readOpening(sockets.reactor, acceptor, Date.now() + 10_000));
    await Bun.sleep(50);
    expect(read.settled).toBe(false);

    send(stranger, ascii('X'));

    expect((await rejection(read.promise)).code).toBe('EPROTOCOL');
  });

  test('fails with EPEER_CLOSED when the peer closes before 20 bytes', async () => {
    const [dialer, acceptor] = sockets.pair();
    send(dialer, sessionOpening().subarray(0, 5));
    shutdown(dialer, 'write');

    const err = await rejection(readOpening(sockets.reactor, acceptor, Date.now() + SOON_MS));

    expect(err.code).toBe('EPEER_CLOSED');
    expect(err.message).toBe('Connection closed by the peer while reading the opening record');
  });

  test('fails with EPEER_CLOSED when the peer closes while the read waits', async () => {
    const [dialer, acceptor] = sockets.pair();
    const read = watch(readOpening(sockets.reactor, acceptor, Date.now() + SOON_MS));
    await Bun.sleep(20);

    sockets.close(dialer);

    expect((await rejection(read.promise)).code).toBe('EPEER_CLOSED');
  });

  test('fails with EDEADLINE when nothing arrives before the deadline', async () => {
    const [, acceptor] = sockets.pair();
    const started = Date.now();

    const err = await rejection(readOpening(sockets.reactor, acceptor, started + 100));

    expect(err.code).toBe('EDEADLINE');
    expect(err.message).toContain('the opening record');
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(Date.now() - started).toBeLessThan(SOON_MS);
  });
});

describe('sendAll', () => {
  test('sends small data at once, with nothing to wait for', () => {
    const [a, b] = sockets.pair();

    const rest = sendAll(sockets.reactor, a, ascii('hello'), Date.now() + SOON_MS);

    expect(rest).toBeUndefined();
    expect(recvNow(b, 16)).toEqual(ascii('hello'));
  });

  test('sends data larger than the socket buffer exactly once, in order, as the reader drains it', async () => {
    const [a, b] = sockets.pair();
    const data = pattern(1 << 20, 3);

    const rest = sendAll(sockets.reactor, a, data, Date.now() + SOON_MS, 'test bytes');
    expect(rest).toBeInstanceOf(Promise);
    const got = await recvExactly(sockets.reactor, b, data.length, Date.now() + SOON_MS);
    await rest;

    expect(got.length).toBe(data.length);
    expect(Buffer.compare(got, data)).toBe(0);
    expect(recvNow(b, 16).length).toBe(0);
  });
});
