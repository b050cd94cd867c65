import { describe, expect, test } from 'bun:test';

import { ProtocolError } from '../../src/errors.ts';
import {
  OPENING_BYTES,
  openingStartsWell,
  parseOpening,
  sessionOpening,
  ticketKey,
  ticketOpening,
} from '../../src/wire/opening.ts';

const ascii = (text: string) => Array.from(text, (c) => c.charCodeAt(0));

/** The ticket 0x10, 0x11, ..., 0x1f. */
const ticket = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);

function parseError(buf: Uint8Array): ProtocolError {
  try {
    parseOpening(buf);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('expected parseOpening to throw');
}

describe('opening records', () => {
  test('a session opens with "RWS2" and sixteen zero bytes', () => {
    const record = sessionOpening();

    expect(record.length).toBe(OPENING_BYTES);
    expect(Array.from(record)).toEqual([...ascii('RWS2'), ...new Array(16).fill(0)]);
  });

  test('a session record with anything but zeros after RWS2 is refused', () => {
    const record = sessionOpening();
    record[19] = 1;

    expect(() => parseOpening(record)).toThrow(
      'Session opening record has non-zero bytes after RWS2',
    );
  });

  test('a data connection opens with "RWT2" and its ticket in bytes 4 to 19', () => {
    const record = ticketOpening(ticket);

    expect(record.length).toBe(20);
    expect(Array.from(record.subarray(0, 4))).toEqual(ascii('RWT2'));
    expect(Array.from(record.subarray(4))).toEqual(Array.from(ticket));
  });

  test('a ticket that is not 16 bytes is refused', () => {
    for (const length of [0, 15, 17]) {
      expect(() => ticketOpening(new Uint8Array(length))).toThrow(
        new RangeError(`A ticket is 16 bytes, not ${length}`),
      );
    }
  });
});

describe('parseOpening', () => {
  test('reads back a session record', () => {
    expect(parseOpening(sessionOpening())).toEqual({ kind: 'session' });
  });

  test('reads back the ticket of a ticket record, as a copy', () => {
    const record = ticketOpening(ticket);

    const opening = parseOpening(record);
    record.fill(0, 4);

    expect(opening.kind).toBe('ticket');
    expect(opening.kind === 'ticket' && Array.from(opening.ticket)).toEqual(Array.from(ticket));
  });

  test('reads only the first 20 bytes of a longer buffer', () => {
    const buf = new Uint8Array(32).fill(0xee);
    buf.set(ticketOpening(ticket));

    const opening = parseOpening(buf);

    expect(opening.kind === 'ticket' && Array.from(opening.ticket)).toEqual(Array.from(ticket));
  });

  test('refuses a record shorter than 20 bytes with EPROTOCOL', () => {
    for (const buf of [new Uint8Array(0), sessionOpening().subarray(0, 19)]) {
      const err = parseError(buf);
      expect(err.code).toBe('EPROTOCOL');
      expect(err.message).toContain('RWS2 or RWT2');
    }
  });

  test('refuses a wrong magic with EPROTOCOL, naming the records it expected', () => {
    const wrong = [ascii('RWS1'), ascii('RWT3'), ascii('rws2'), ascii('GET '), ascii('RWX2')];
    for (const magic of wrong) {
      const buf = new Uint8Array(20);
      buf.set(magic);

      const err = parseError(buf);

      expect(err.code).toBe('EPROTOCOL');
      expect(err.message).toBe(
        'Connection to the rewire port did not open with a rewire record (RWS2 or RWT2): not a rewire agent of this protocol version',
      );
    }
  });
});

describe('openingStartsWell', () => {
  test('accepts every prefix of 0 to 4 bytes of either magic', () => {
    for (const record of [sessionOpening(), ticketOpening(ticket)]) {
      for (let n = 0; n <= 4; n++) expect(openingStartsWell(record, n)).toBe(true);
    }
  });

  test('accepts any bytes past the magic', () => {
    const buf = new Uint8Array(20).fill(0xff);
    buf.set(ascii('RWT2'));

    expect(openingStartsWell(buf, 20)).toBe(true);
  });

  test('refuses a prefix as soon as one of its bytes is wrong', () => {
    const cases: Array<[string, number]> = [
      ['G', 1],
      ['GET / HTTP/1.1', 4],
      ['Rx', 2],
      ['RWx', 3],
      ['RWS3', 4],
      ['RWT1', 4],
      ['RWST', 4],
    ];
    for (const [text, n] of cases) {
      const buf = new Uint8Array(20);
      buf.set(ascii(text).slice(0, 20));
      expect({ text, n, good: openingStartsWell(buf, n) }).toEqual({ text, n, good: false });
    }
  });

  test('judges only the first n bytes', () => {
    const buf = new Uint8Array(20);
    buf.set(ascii('RWxx'));

    expect(openingStartsWell(buf, 2)).toBe(true);
    expect(openingStartsWell(buf, 3)).toBe(false);
  });
});

describe('ticketKey', () => {
  test('is the ticket in hex', () => {
    expect(ticketKey(ticket)).toBe('101112131415161718191a1b1c1d1e1f');
  });

  test('reads only the ticket when it is a view into a larger buffer', () => {
    const record = ticketOpening(ticket);
    const view = record.subarray(4);

    expect(view.byteOffset).toBe(4);
    expect(ticketKey(view)).toBe('101112131415161718191a1b1c1d1e1f');
  });

  test('tells different tickets apart', () => {
    const other = ticket.slice();
    other[15] = 0;

    expect(ticketKey(other)).not.toBe(ticketKey(ticket));
  });
});
