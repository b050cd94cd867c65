import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';

import {
  accept,
  AF,
  bind,
  close,
  connect,
  decodeSockAddr,
  encodeSockAddr,
  FfiArgumentError,
  formatIPv4,
  formatIPv6,
  formatSockAddr,
  getPeerName,
  getSockName,
  listen,
  parseIPv4,
  parseIPv6,
  setIntOption,
  socket,
  type SockAddr,
} from '../../ffi/index.ts';
import { checkNoFdLeaks } from './helpers.ts';

checkNoFdLeaks();

/** Encodes and decodes back, as the kernel would hand the same bytes back. */
function roundTrip(addr: SockAddr): SockAddr {
  const { buf, len } = encodeSockAddr(addr);
  return decodeSockAddr(buf, len);
}

/** A usable link-local IPv6 address of this machine and its interface index, if it has one. */
function linkLocal(): { address: string; scopeId: number } | undefined {
  let table = '';
  try {
    table = readFileSync('/proc/net/if_inet6', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of table.trim().split('\n')) {
    const [hex = '', index = '', , scope = '', flags = ''] = line.trim().split(/\s+/);
    const tentativeOrFailed = (parseInt(flags, 16) & 0x48) !== 0;
    if (scope !== '20' || tentativeOrFailed) continue;
    const bytes = Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
    return { address: formatIPv6(bytes), scopeId: parseInt(index, 16) };
  }
  return undefined;
}

describe('encoding and decoding', () => {
  test('sockaddr_in carries the family, the port in network order and the address', () => {
    const { buf, len } = encodeSockAddr({ family: 'inet', address: '192.0.2.1', port: 8080 });
    expect(len).toBe(16);
    expect(Array.from(buf.subarray(0, 8))).toEqual([AF.INET, 0, 0x1f, 0x90, 192, 0, 2, 1]);
    expect(decodeSockAddr(buf, len)).toEqual({ family: 'inet', address: '192.0.2.1', port: 8080 });
  });

  test('sockaddr_in6 carries flowinfo in network order and the scope id in host order', () => {
    const addr = {
      family: 'inet6',
      address: 'fe80::1',
      port: 443,
      flowinfo: 0x12345,
      scopeId: 7,
    } as const;
    const { buf, len } = encodeSockAddr(addr);

    expect(len).toBe(28);
    expect(Array.from(buf.subarray(0, 10))).toEqual([
      AF.INET6,
      0,
      1,
      0xbb,
      0,
      1,
      0x23,
      0x45,
      0xfe,
      0x80,
    ]);
    expect(buf[23]).toBe(1);
    expect(Array.from(buf.subarray(24, 28))).toEqual([7, 0, 0, 0]);
    expect(decodeSockAddr(buf, len)).toEqual(addr);
  });

  test('a zero flowinfo and scope id are left out when decoding', () => {
    expect(
      roundTrip({ family: 'inet6', address: '::1', port: 1, flowinfo: 0, scopeId: 0 }),
    ).toEqual({ family: 'inet6', address: '::1', port: 1 });
  });

  test('a unix path is NUL-terminated and counted with its NUL', () => {
    const { buf, len } = encodeSockAddr({ family: 'unix', path: '/run/rewire.sock' });
    expect(len).toBe(2 + 16 + 1);
    expect(buf[2 + 16]).toBe(0);
    expect(decodeSockAddr(buf, len)).toEqual({ family: 'unix', path: '/run/rewire.sock' });
    expect(decodeSockAddr(buf, len - 1)).toEqual({ family: 'unix', path: '/run/rewire.sock' });
  });

  test('an abstract name starts with a NUL and is counted without a trailing one', () => {
    const { buf, len } = encodeSockAddr({ family: 'unix', abstract: 'rewire' });
    expect(len).toBe(2 + 1 + 6);
    expect(buf[2]).toBe(0);
    expect(decodeSockAddr(buf, len)).toEqual({ family: 'unix', abstract: 'rewire' });
  });

  test('an unnamed unix address is the family alone', () => {
    const { buf, len } = encodeSockAddr({ family: 'unix' });
    expect(len).toBe(2);
    expect(decodeSockAddr(buf, len)).toEqual({ family: 'unix' });
  });

  test('decoding reads a struct at an offset inside a larger buffer', () => {
    const { buf, len } = encodeSockAddr({ family: 'inet', address: '10.1.2.3', port: 7780 });
    const bigger = new Uint8Array(64);
    bigger.set(buf, 8);
    expect(decodeSockAddr(bigger.subarray(8), len)).toEqual({
      family: 'inet',
      address: '10.1.2.3',
      port: 7780,
    });
  });

  test('decoding an unsupported family throws', () => {
    const buf = new Uint8Array(16);
    buf[0] = 17; // AF_PACKET
    expect(() => decodeSockAddr(buf, 16)).toThrow(
      "Cannot decode address: family '17' is not supported",
    );
  });

  test('formatSockAddr gives the short text form of each kind', () => {
    expect(formatSockAddr({ family: 'inet', address: '10.0.0.1', port: 7780 })).toBe(
      '10.0.0.1:7780',
    );
    expect(formatSockAddr({ family: 'inet6', address: '::1', port: 7780 })).toBe('[::1]:7780');
    expect(formatSockAddr({ family: 'unix', abstract: 'rewire' })).toBe('@rewire');
    expect(formatSockAddr({ family: 'unix', path: '/run/r.sock' })).toBe('/run/r.sock');
    expect(formatSockAddr({ family: 'unix' })).toBe('(unnamed)');
  });
});

describe('addresses the kernel hands back', () => {
  test('an abstract unix name binds and comes back from getsockname', () => {
    const name = `rewire-test-${process.pid}-${Date.now()}`;
    const fd = socket('unix', 'stream');
    bind(fd, { family: 'unix', abstract: name });
    expect(getSockName(fd)).toEqual({ family: 'unix', abstract: name });
    close(fd);
  });

  test('the longest abstract name, 107 bytes, binds whole', () => {
    const name = `rewire-${process.pid}-`.padEnd(107, 'x');
    const fd = socket('unix', 'stream');
    bind(fd, { family: 'unix', abstract: name });
    expect(getSockName(fd)).toEqual({ family: 'unix', abstract: name });
    close(fd);
  });

  test('an IPv4 client of a dual-stack listener shows as a v4-mapped IPv6 address', () => {
    const listener = socket('inet6', 'stream');
    setIntOption(listener, 'IPV6_V6ONLY', 0);
    bind(listener, { family: 'inet6', address: '::', port: 0 });
    listen(listener, 1);
    const { port } = getSockName(listener) as { port: number };
    const client = socket('inet', 'stream');
    connect(client, { family: 'inet', address: '127.0.0.1', port });
    const server = accept(listener)!;

    const local = getSockName(client) as { port: number };
    expect(server.peer).toEqual({ family: 'inet6', address: '::ffff:127.0.0.1', port: local.port });
    expect(getSockName(server.fd)).toEqual({ family: 'inet6', address: '::ffff:127.0.0.1', port });
    [server.fd, client, listener].forEach(close);
  });

  const local = linkLocal();
  test.skipIf(local === undefined)(
    'a link-local address binds with its scope id, which getsockname reports',
    () => {
      const fd = socket('inet6', 'stream');
      expect(() => bind(fd, { family: 'inet6', address: local!.address, port: 0 })).toThrow(
        /EINVAL/,
      );
      bind(fd, { family: 'inet6', address: local!.address, port: 0, scopeId: local!.scopeId });
      expect(getSockName(fd)).toMatchObject({
        family: 'inet6',
        address: local!.address,
        scopeId: local!.scopeId,
      });
      close(fd);
    },
  );

  test('getpeername of an unconnected socket throws ENOTCONN', () => {
    const fd = socket('inet', 'stream');
    expect(() => getPeerName(fd)).toThrow(
      `getpeername(fd ${fd}): ENOTCONN (transport endpoint is not connected)`,
    );
    close(fd);
  });
});

describe('IP address text', () => {
  const canonical: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['FE80::ABCD', 'fe80::abcd'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::FFFF:c000:0201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, expected] of canonical) {
    test(`IPv6 '${input}' formats as '${expected}'`, () => {
      expect(formatIPv6(parseIPv6(input))).toBe(expected);
    });
  }

  test('IPv6 parses into network-order bytes', () => {
    expect(Array.from(parseIPv6('2001:db8::ff00:42:8329'))).toEqual([
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29,
    ]);
  });

  test('IPv4 parses and formats dotted quads', () => {
    expect(Array.from(parseIPv4('10.20.30.255'))).toEqual([10, 20, 30, 255]);
    expect(formatIPv4(Uint8Array.from([192, 168, 0, 1]))).toBe('192.168.0.1');
  });

  for (const bad of ['256.1.1.1', '1.2.3', 'abc', '', '1.2.3.4.5', '::1']) {
    test(`IPv4 refuses '${bad}'`, () => {
      expect(() => parseIPv4(bad)).toThrow(`Cannot parse IPv4 address: '${bad}'`);
    });
  }

  for (const bad of [
    '1:2:3:4:5:6:7:8:9',
    ':::',
    'g::1',
    '1::2::3',
    '',
    '127.0.0.1',
    '::ffff:1.2.3',
  ]) {
    test(`IPv6 refuses '${bad}'`, () => {
      expect(() => parseIPv6(bad)).toThrow(`Cannot parse IPv6 address: '${bad}'`);
    });
  }

  test('IPv6 refuses a zone instead of dropping it', () => {
    expect(() => parseIPv6('fe80::1%eth0')).toThrow(
      "Cannot parse IPv6 address: 'fe80::1%eth0' has a zone; give the interface index as scopeId",
    );
  });
});

describe('bad addresses', () => {
  for (const port of [65536, -1, 1.5]) {
    test(`port ${port} is refused`, () => {
      expect(() => encodeSockAddr({ family: 'inet', address: '127.0.0.1', port })).toThrow(
        `Cannot encode address: port '${port}' is not in 0..65535`,
      );
      expect(() => encodeSockAddr({ family: 'inet6', address: '::1', port })).toThrow(
        FfiArgumentError,
      );
    });
  }

  test('a unix path of 107 bytes fits and one of 108 does not', () => {
    expect(encodeSockAddr({ family: 'unix', path: '/'.padEnd(107, 'p') }).len).toBe(110);
    const long = '/'.padEnd(108, 'p');
    expect(() => encodeSockAddr({ family: 'unix', path: long })).toThrow(
      `Cannot encode unix address: '${long}' is 109 bytes, more than 108`,
    );
  });

  test('an abstract name of 108 bytes does not fit', () => {
    expect(() => encodeSockAddr({ family: 'unix', abstract: 'a'.repeat(108) })).toThrow(
      FfiArgumentError,
    );
  });

  test('a path with a NUL, an empty path, and path with abstract are refused', () => {
    expect(() => encodeSockAddr({ family: 'unix', path: '/tmp/a\0b' })).toThrow(/contains NUL/);
    expect(() => encodeSockAddr({ family: 'unix', path: '' })).toThrow(
      'Cannot encode unix address: path is empty',
    );
    expect(() => encodeSockAddr({ family: 'unix', path: '/a', abstract: 'b' })).toThrow(
      'Cannot encode unix address: both path and abstract are set',
    );
  });

  test('a malformed address is refused before bind is called', () => {
    const fd = socket('inet', 'stream');
    expect(() => bind(fd, { family: 'inet', address: '300.0.0.1', port: 0 })).toThrow(
      FfiArgumentError,
    );
    expect(getSockName(fd)).toEqual({ family: 'inet', address: '0.0.0.0', port: 0 });
    close(fd);
  });
});
