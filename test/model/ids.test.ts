import { describe, expect, test } from 'bun:test';

import { IdError } from '../../src/model/errors.ts';
import {
  dmtcpHostId,
  endpointKey,
  formatEndpointId,
  parseEndpointKey,
  parseProcessKey,
  processKey,
  sameEndpoint,
  sameProcess,
} from '../../src/model/ids.ts';
import type { EndpointId, ProcessId } from '../../src/model/types.ts';

const U64_MAX = (1n << 64n) - 1n;
const p: ProcessId = { hostId: U64_MAX, pid: 4121, birthTime: 1n << 63n, generation: 2 };
const e: EndpointId = { process: p, conn: 7 };

describe('keys', () => {
  test('writes process and endpoint keys in decimal', () => {
    expect(processKey(p)).toBe('18446744073709551615:4121:9223372036854775808:2');
    expect(endpointKey(e)).toBe('18446744073709551615:4121:9223372036854775808:2#7');
    expect(formatEndpointId(e)).toBe(endpointKey(e));
  });

  test('parses keys back to equal ids', () => {
    const ids: EndpointId[] = [
      e,
      { process: { hostId: 0n, pid: 1, birthTime: 0n, generation: 0 }, conn: 0 },
      {
        process: { hostId: 5n, pid: 2147483647, birthTime: U64_MAX, generation: 4294967295 },
        conn: 4294967295,
      },
    ];
    for (const id of ids) {
      expect(parseEndpointKey(endpointKey(id))).toEqual(id);
      expect(parseProcessKey(processKey(id.process))).toEqual(id.process);
    }
  });

  test('rejects text that is not a key, saying what a key looks like', () => {
    const bad = ['', 'abc', '1:2:3', '1:2:3:4#', '1:2:3:4#x', ' 1:2:3:4#5', '1:2:3:4#5#6'];
    for (const text of bad) {
      expect(() => parseEndpointKey(text)).toThrow(IdError);
    }
    expect(() => parseEndpointKey('1:2:3:4')).toThrow(
      "Cannot parse endpoint id '1:2:3:4': expected hostId:pid:birthTime:generation#conn in decimal",
    );
    expect(() => parseProcessKey('1:2:3:4#5')).toThrow(
      "Cannot parse process id '1:2:3:4#5': expected hostId:pid:birthTime:generation in decimal",
    );
  });

  test('rejects numbers out of range, naming them', () => {
    expect(() => parseEndpointKey('18446744073709551616:1:1:0#1')).toThrow(
      'host id 18446744073709551616 is above 2^64-1',
    );
    expect(() => parseEndpointKey('1:2147483648:1:0#1')).toThrow(
      'pid 2147483648 is not a 32-bit integer',
    );
    expect(() => parseEndpointKey('1:1:1:4294967296#1')).toThrow(
      'generation 4294967296 is too large',
    );
    expect(() => parseEndpointKey('1:1:1:0#4294967296')).toThrow(
      'connection number 4294967296 is too large',
    );
    expect(() => parseEndpointKey('x')).toThrow(expect.objectContaining({ code: 'EID' }));
  });

  test('compares ids by every field', () => {
    expect(sameProcess(p, { ...p })).toBe(true);
    expect(sameProcess(p, { ...p, generation: 3 })).toBe(false);
    expect(sameProcess(p, { ...p, hostId: 1n })).toBe(false);
    expect(sameEndpoint(e, { process: { ...p }, conn: 7 })).toBe(true);
    expect(sameEndpoint(e, { process: p, conn: 8 })).toBe(false);
  });
});

describe('dmtcpHostId', () => {
  /** The same formula, written independently: 64-bit signed wrap-around, then abs. */
  const python = [
    'import sys',
    'for name in sys.argv[1:]:',
    '    h = 0',
    '    for c in name.encode():',
    '        h = (c + 331 * h) & (2**64 - 1)',
    '    if h >= 2**63: h -= 2**64',
    '    print(abs(h))',
  ].join('\n');

  function pythonHostIds(names: string[]): bigint[] {
    const run = Bun.spawnSync(['python3', '-c', python, ...names]);
    expect(run.exitCode).toBe(0);
    return run.stdout.toString().trim().split('\n').map(BigInt);
  }

  test('matches an independent computation for short and wrapping names', () => {
    const names = [
      'a',
      'node01',
      'compute-17.cluster.example.org',
      'x'.repeat(64),
      'very-long-host-name-that-wraps-around-sixty-four-bits.example',
      'ñode',
    ];
    expect(names.map(dmtcpHostId)).toEqual(pythonHostIds(names));
  });

  test('hashes the empty name to 0 and is never negative', () => {
    expect(dmtcpHostId('')).toBe(0n);
    for (let i = 0; i < 200; i++) {
      const id = dmtcpHostId(`host-${i}-${'z'.repeat(i % 23)}`);
      expect(id >= 0n && id <= 1n << 63n).toBe(true);
    }
  });

  test('computes a short name by hand', () => {
    // 'ab': h = 97; h = 98 + 331 * 97.
    expect(dmtcpHostId('ab')).toBe(98n + 331n * 97n);
  });
});
