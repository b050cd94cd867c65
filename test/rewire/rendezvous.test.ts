import { afterEach, describe, expect, test } from 'bun:test';

import { DeadlineError } from '../../src/errors.ts';
import { Rendezvous } from '../../src/rewire/rendezvous.ts';
import { rejection } from '../helpers/waits.ts';

/** Deadlines and expiries for values that must not expire during a test. */
const LATER_MS = 10_000;

let current: Rendezvous<string> | undefined;
let disposed: string[] = [];

/** A rendezvous that records what it disposes; cleared after the test. */
function rendezvous(maxHeld = 8): Rendezvous<string> {
  disposed = [];
  current = new Rendezvous<string>((value) => disposed.push(value), maxHeld);
  return current;
}

afterEach(() => {
  current?.clear('the test ended');
  current = undefined;
});

const later = () => Date.now() + LATER_MS;

describe('Rendezvous meeting', () => {
  test('a value put first is held, then given to the take', async () => {
    const r = rendezvous();

    expect(r.put('t1', 'fd 12', later())).toBe(true);
    expect([r.heldCount, r.waitingCount]).toEqual([1, 0]);

    expect(await r.take('t1', later(), 'the data connection')).toBe('fd 12');
    expect([r.heldCount, r.waitingCount]).toEqual([0, 0]);
    expect(disposed).toEqual([]);
  });

  test('a take made first waits, then gets the value put', async () => {
    const r = rendezvous();

    const taken = r.take('t1', later(), 'the data connection');
    expect([r.heldCount, r.waitingCount]).toEqual([0, 1]);

    expect(r.put('t1', 'fd 12', later())).toBe(true);
    expect([r.heldCount, r.waitingCount]).toEqual([0, 0]);
    expect(await taken).toBe('fd 12');
    expect(disposed).toEqual([]);
  });

  test('keys do not meet each other', async () => {
    const r = rendezvous();
    const taken = r.take('t2', later(), 'the second connection');

    r.put('t1', 'fd 12', later());
    r.put('t2', 'fd 13', later());

    expect(await taken).toBe('fd 13');
    expect(await r.take('t1', later(), 'the first connection')).toBe('fd 12');
  });
});

describe('Rendezvous expiry', () => {
  test('a value not taken by its expiry is disposed', async () => {
    const r = rendezvous();
    r.put('t1', 'fd 12', Date.now() + 50);

    await Bun.sleep(300);

    expect(disposed).toEqual(['fd 12']);
    expect(r.heldCount).toBe(0);
  });

  test('a value taken before its expiry is not disposed later', async () => {
    const r = rendezvous();
    r.put('t1', 'fd 12', Date.now() + 50);
    await r.take('t1', later(), 'the data connection');

    await Bun.sleep(300);

    expect(disposed).toEqual([]);
  });

  test('a take past its deadline rejects with EDEADLINE, naming what it waited for', async () => {
    const r = rendezvous();
    const started = Date.now();

    const err = await rejection(r.take('t1', started + 50, "the data connection of offer 'x'"));

    expect(err).toBeInstanceOf(DeadlineError);
    expect(err.code).toBe('EDEADLINE');
    expect(err.message).toBe("Timed out waiting for the data connection of offer 'x'");
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(r.waitingCount).toBe(0);
  });

  test('a value put after its take timed out is held, not given to the old take', async () => {
    const r = rendezvous();
    await rejection(r.take('t1', Date.now() + 50, 'the data connection'));

    expect(r.put('t1', 'fd 12', later())).toBe(true);

    expect([r.heldCount, r.waitingCount]).toEqual([1, 0]);
  });
});

describe('Rendezvous refusals', () => {
  test('a second take on a key already waited for rejects; the first still gets the value', async () => {
    const r = rendezvous();
    const first = r.take('t1', later(), 'the data connection');

    const err = await rejection(r.take('t1', later(), 'the data connection'));

    expect(err.code).toBe('EPROTOCOL');
    expect(err.message).toBe('Cannot wait for the data connection: something waits for it already');
    expect(r.waitingCount).toBe(1);
    r.put('t1', 'fd 12', later());
    expect(await first).toBe('fd 12');
  });

  test('put refuses a key that is held already and keeps the first value', async () => {
    const r = rendezvous();
    r.put('t1', 'fd 12', later());

    expect(r.put('t1', 'fd 13', later())).toBe(false);

    expect(r.heldCount).toBe(1);
    expect(disposed).toEqual([]);
    expect(await r.take('t1', later(), 'the data connection')).toBe('fd 12');
  });

  test('put refuses once maxHeld values are held, and accepts again after a take', async () => {
    const r = rendezvous(2);
    expect(r.put('t1', 'fd 12', later())).toBe(true);
    expect(r.put('t2', 'fd 13', later())).toBe(true);

    expect(r.put('t3', 'fd 14', later())).toBe(false);
    expect(r.heldCount).toBe(2);
    expect(disposed).toEqual([]);

    await r.take('t1', later(), 'the first connection');
    expect(r.put('t3', 'fd 14', later())).toBe(true);
    expect(r.heldCount).toBe(2);
  });

  test('a put that meets a waiting take succeeds even when maxHeld values are held', async () => {
    const r = rendezvous(1);
    r.put('t1', 'fd 12', later());
    const taken = r.take('t2', later(), 'the second connection');

    expect(r.put('t2', 'fd 13', later())).toBe(true);

    expect(await taken).toBe('fd 13');
    expect(r.heldCount).toBe(1);
  });
});

describe('Rendezvous cancel and clear', () => {
  test('cancel disposes a held value', () => {
    const r = rendezvous();
    r.put('t1', 'fd 12', later());

    r.cancel('t1');

    expect(disposed).toEqual(['fd 12']);
    expect([r.heldCount, r.waitingCount]).toEqual([0, 0]);
  });

  test('cancel rejects a waiting take with the reason', async () => {
    const r = rendezvous();
    const taken = r.take('t1', later(), 'the data connection');

    r.cancel('t1', 'the offer was withdrawn');

    const err = await rejection(taken);
    expect(err.code).toBe('ECANCELLED');
    expect(err.message).toBe('Stopped waiting for the data connection: the offer was withdrawn');
    expect(r.waitingCount).toBe(0);
    expect(disposed).toEqual([]);
  });

  test('cancel of an unknown key does nothing', () => {
    const r = rendezvous();
    r.put('t1', 'fd 12', later());

    r.cancel('t2');

    expect(r.heldCount).toBe(1);
    expect(disposed).toEqual([]);
  });

  test('clear disposes every held value and rejects every waiting take', async () => {
    const r = rendezvous();
    r.put('t1', 'fd 12', later());
    r.put('t2', 'fd 13', later());
    const waits = [r.take('t3', later(), 'offer 3'), r.take('t4', later(), 'offer 4')];
    expect([r.heldCount, r.waitingCount]).toEqual([2, 2]);

    r.clear('the agent is stopping');

    expect(disposed.sort()).toEqual(['fd 12', 'fd 13']);
    expect([r.heldCount, r.waitingCount]).toEqual([0, 0]);
    const errors = await Promise.all(waits.map(rejection));
    expect(errors.map((err) => err.message)).toEqual([
      'Stopped waiting for offer 3: the agent is stopping',
      'Stopped waiting for offer 4: the agent is stopping',
    ]);
  });

  test('still expires values put after a clear', async () => {
    const r = rendezvous();
    r.put('t1', 'fd 12', later());
    r.clear('restart');

    r.put('t2', 'fd 13', Date.now() + 50);
    await Bun.sleep(300);

    expect(disposed).toEqual(['fd 12', 'fd 13']);
    expect(r.heldCount).toBe(0);
  });
});
