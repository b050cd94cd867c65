import { describe, expect, test } from 'bun:test';

import {
  AF,
  bind,
  bufferSizeToSet,
  close,
  connect,
  encodeInt,
  EPOLL,
  Errno,
  FfiArgumentError,
  getIntOption,
  getLinger,
  getSockName,
  getSockOptRaw,
  getStringOption,
  getTimevalOption,
  getuid,
  IPPROTO,
  listen,
  OPTIONS,
  optionByNumber,
  optionSpec,
  queueLengths,
  recv,
  send,
  setIntOption,
  setLinger,
  setNoDelay,
  setNonBlocking,
  setSockOptRaw,
  setStringOption,
  setTimevalOption,
  shutdown,
  SO,
  SOCK,
  socket,
  socketError,
  socketKind,
  socketpair,
  SOL,
  SyscallError,
  TCP,
  tcpState,
  type Family,
  type OptionName,
  type OptionSpec,
} from '../../ffi/index.ts';
import { bytes, checkNoFdLeaks, recvExactly, tcpPair, until, waitFor } from './helpers.ts';

checkNoFdLeaks();

const allFamilies = ['inet', 'inet6', 'unix'] as const;

/** For each settable int option: the value to set, and what getsockopt reports afterwards. */
const intCases: Record<string, { set: number; get?: number }> = {
  SO_REUSEADDR: { set: 1 },
  SO_REUSEPORT: { set: 1 },
  SO_KEEPALIVE: { set: 1 },
  SO_SNDBUF: { set: 32768, get: 65536 }, // the kernel doubles buffer sizes
  SO_RCVBUF: { set: 32768, get: 65536 },
  SO_OOBINLINE: { set: 1 },
  SO_PRIORITY: { set: 5 },
  SO_RCVLOWAT: { set: 10 },
  SO_MARK: { set: 7 },
  TCP_NODELAY: { set: 1 },
  TCP_KEEPIDLE: { set: 33 },
  TCP_KEEPINTVL: { set: 7 },
  TCP_KEEPCNT: { set: 4 },
  TCP_USER_TIMEOUT: { set: 12345 },
  TCP_MAXSEG: { set: 1000 },
  TCP_CORK: { set: 1 },
  TCP_QUICKACK: { set: 0 },
  TCP_DEFER_ACCEPT: { set: 7 }, // seconds, stored as retransmits; 7 = 1+2+4 comes back exact
  TCP_NOTSENT_LOWAT: { set: 16384 },
  IP_TOS: { set: 0x10 },
  IP_TTL: { set: 17 },
  IPV6_V6ONLY: { set: 1 },
  IPV6_TCLASS: { set: 0x20 },
};

const specs = Object.values(OPTIONS) as OptionSpec[];
const settableInts = specs.filter((o) => o.kind === 'int' && !o.readOnly);
const familiesOf = (spec: OptionSpec) => spec.families ?? allFamilies;

describe('every settable option round-trips on a real socket', () => {
  test('each settable int option has a round-trip case', () => {
    expect(settableInts.map((o) => o.name).sort()).toEqual(Object.keys(intCases).sort());
  });

  for (const spec of settableInts) {
    for (const family of familiesOf(spec)) {
      test(`${spec.name} set on a ${family} socket reads back`, () => {
        const name = spec.name as OptionName;
        const { set, get = set } = intCases[spec.name]!;
        const fd = socket(family, 'stream');
        expect(getIntOption(fd, name)).not.toBe(get);

        if (spec.name === 'SO_MARK' && getuid() !== 0) {
          expect(() => setIntOption(fd, name, set)).toThrow(/EPERM/);
        } else {
          setIntOption(fd, name, set);
          expect(getIntOption(fd, name)).toBe(get);
        }
        close(fd);
      });
    }
  }

  for (const family of ['inet', 'inet6', 'unix'] as const) {
    test(`SO_LINGER set on a ${family} socket reads back`, () => {
      const fd = socket(family, 'stream');
      expect(getLinger(fd)).toEqual({ onoff: false, seconds: 0 });
      setLinger(fd, { onoff: true, seconds: 5 });
      expect(getLinger(fd)).toEqual({ onoff: true, seconds: 5 });
      // Turning lingering off keeps the time: a replay must carry both fields as read.
      setLinger(fd, { onoff: false, seconds: 0 });
      expect(getLinger(fd)).toEqual({ onoff: false, seconds: 5 });
      close(fd);
    });

    for (const name of ['SO_RCVTIMEO', 'SO_SNDTIMEO'] as const) {
      test(`${name} set on a ${family} socket reads back in microseconds`, () => {
        const fd = socket(family, 'stream');
        expect(getTimevalOption(fd, name)).toBe(0);
        setTimevalOption(fd, name, 1_500_000);
        expect(getTimevalOption(fd, name)).toBe(1_500_000);
        setTimevalOption(fd, name, 500_000);
        expect(getTimevalOption(fd, name)).toBe(500_000);
        close(fd);
      });
    }
  }

  for (const family of ['inet', 'inet6'] as const) {
    test(`TCP_CONGESTION set on a ${family} socket reads back as a string`, () => {
      const fd = socket(family, 'stream');
      const initial = getStringOption(fd, 'TCP_CONGESTION');
      expect(initial).toMatch(/^[a-z0-9_]+$/);
      setStringOption(fd, 'TCP_CONGESTION', 'reno');
      expect(getStringOption(fd, 'TCP_CONGESTION')).toBe('reno');
      setStringOption(fd, 'TCP_CONGESTION', initial);
      expect(getStringOption(fd, 'TCP_CONGESTION')).toBe(initial);
      close(fd);
    });
  }

  test('a timeout finer than the kernel tick reads back rounded up to a tick', () => {
    const fd = socket('inet', 'stream');
    setTimevalOption(fd, 'SO_RCVTIMEO', 250_001);
    const read = getTimevalOption(fd, 'SO_RCVTIMEO');
    expect(read).toBeGreaterThanOrEqual(250_001);
    expect(read).toBeLessThanOrEqual(260_000);
    close(fd);
  });

  test('TCP_CONGESTION with an unknown algorithm throws ENOENT', () => {
    const fd = socket('inet', 'stream');
    expect(() => setStringOption(fd, 'TCP_CONGESTION', 'no-such-cc')).toThrow(
      `setsockopt(fd ${fd}, IPPROTO_TCP, TCP_CONGESTION): ENOENT (no such file or directory)`,
    );
    close(fd);
  });

  test('setNoDelay turns TCP_NODELAY on and off', () => {
    const fd = socket('inet', 'stream');
    setNoDelay(fd, true);
    expect(getIntOption(fd, 'TCP_NODELAY')).toBe(1);
    setNoDelay(fd, false);
    expect(getIntOption(fd, 'TCP_NODELAY')).toBe(0);
    close(fd);
  });

  test('raw get and set work with numbers rewire has no name for', () => {
    const fd = socket('inet', 'stream');
    setSockOptRaw(fd, SOL.SOCKET, SO.KEEPALIVE, encodeInt(1));
    expect(getSockOptRaw(fd, SOL.SOCKET, SO.KEEPALIVE)).toEqual(encodeInt(1));
    setSockOptRaw(fd, SOL.TCP, TCP.SYNCNT, encodeInt(3));
    expect(getSockOptRaw(fd, SOL.TCP, TCP.SYNCNT, 4)).toEqual(encodeInt(3));
    close(fd);
  });
});

describe('options that take effect', () => {
  test('SO_RCVTIMEO makes a blocking recv give up with -1', () => {
    const [a, b] = socketpair('stream');
    setTimevalOption(b, 'SO_RCVTIMEO', 20_000);
    const started = performance.now();
    expect(recv(b, new Uint8Array(1))).toBe(-1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
    [a, b].forEach(close);
  });

  test('SO_REUSEPORT lets two listeners share a port; without it the second bind fails', () => {
    const first = socket('inet', 'stream');
    setIntOption(first, 'SO_REUSEPORT', 1);
    bind(first, { family: 'inet', address: '127.0.0.1', port: 0 });
    listen(first, 1);
    const shared = getSockName(first);
    const second = socket('inet', 'stream');
    setIntOption(second, 'SO_REUSEPORT', 1);
    const third = socket('inet', 'stream');

    bind(second, shared);
    expect(() => bind(third, shared)).toThrow(/EADDRINUSE/);
    [first, second, third].forEach(close);
  });

  test('IPV6_V6ONLY decides whether an inet6 listener takes IPv4 connections', () => {
    for (const v6only of [0, 1]) {
      const listener = socket('inet6', 'stream');
      setIntOption(listener, 'IPV6_V6ONLY', v6only);
      bind(listener, { family: 'inet6', address: '::', port: 0 });
      listen(listener, 1);
      const { port } = getSockName(listener) as { port: number };
      const client = socket('inet', 'stream', { nonblock: true });

      if (!connect(client, { family: 'inet', address: '127.0.0.1', port })) {
        waitFor(client, EPOLL.OUT);
      }
      expect(socketError(client)).toBe(v6only ? Errno.ECONNREFUSED : 0);
      [client, listener].forEach(close);
    }
  });

  test('a buffer size read from one socket replays onto another with bufferSizeToSet', () => {
    const recorded = socket('inet', 'stream');
    setIntOption(recorded, 'SO_RCVBUF', 50_000);
    const value = getIntOption(recorded, 'SO_RCVBUF');
    const restored = socket('inet', 'stream');

    setIntOption(restored, 'SO_RCVBUF', bufferSizeToSet(value));
    expect(value).toBe(100_000);
    expect(getIntOption(restored, 'SO_RCVBUF')).toBe(value);
    expect(bufferSizeToSet(1)).toBe(1);
    [recorded, restored].forEach(close);
  });
});

describe('read-only options', () => {
  const kinds = [
    ['inet', 'stream', AF.INET, SOCK.STREAM, IPPROTO.TCP],
    ['inet6', 'stream', AF.INET6, SOCK.STREAM, IPPROTO.TCP],
    ['inet', 'dgram', AF.INET, SOCK.DGRAM, 17],
    ['unix', 'stream', AF.UNIX, SOCK.STREAM, 0],
    ['unix', 'seqpacket', AF.UNIX, SOCK.SEQPACKET, 0],
  ] as const;

  for (const [family, type, domain, typeNumber, protocol] of kinds) {
    test(`SO_DOMAIN, SO_TYPE and SO_PROTOCOL describe a ${family} ${type} socket`, () => {
      const fd = socket(family as Family, type);
      expect(getIntOption(fd, 'SO_DOMAIN')).toBe(domain);
      expect(getIntOption(fd, 'SO_TYPE')).toBe(typeNumber);
      expect(getIntOption(fd, 'SO_PROTOCOL')).toBe(protocol);
      expect(socketKind(fd)).toEqual({ domain, type: typeNumber, protocol, listening: false });
      close(fd);
    });
  }

  test('SO_ACCEPTCONN is set on a listener only', () => {
    const pair = tcpPair();
    expect(getIntOption(pair.listener, 'SO_ACCEPTCONN')).toBe(1);
    expect(getIntOption(pair.client, 'SO_ACCEPTCONN')).toBe(0);
    expect(socketKind(pair.listener).listening).toBe(true);
    expect(socketKind(pair.server).listening).toBe(false);
    pair.closeAll();
  });

  test('SO_ERROR is 0 on a healthy socket', () => {
    const pair = tcpPair();
    expect(socketError(pair.client)).toBe(0);
    expect(getIntOption(pair.server, 'SO_ERROR')).toBe(0);
    pair.closeAll();
  });

  test('the kernel refuses to set a read-only option with ENOPROTOOPT', () => {
    const fd = socket('inet', 'stream');
    expect(() => setIntOption(fd, 'SO_TYPE', SOCK.DGRAM)).toThrow(
      `setsockopt(fd ${fd}, SOL_SOCKET, SO_TYPE): ENOPROTOOPT (protocol not available)`,
    );
    close(fd);
  });
});

describe('queue lengths', () => {
  test('SIOCINQ counts bytes waiting to be read and SIOCOUTQ bytes not yet acknowledged', async () => {
    const pair = tcpPair();
    expect(queueLengths(pair.client)).toEqual({ inq: 0, outq: 0 });

    send(pair.client, new Uint8Array(1000));
    waitFor(pair.server, EPOLL.IN);
    await until('1000 bytes queued', () => queueLengths(pair.server).inq === 1000);
    await until('the bytes acknowledged', () => queueLengths(pair.client).outq === 0);
    recvExactly(pair.server, 600);
    expect(queueLengths(pair.server).inq).toBe(400);
    recvExactly(pair.server, 400);
    expect(queueLengths(pair.server).inq).toBe(0);
    pair.closeAll();
  });

  test('bytes a full receiver cannot take stay in the sender queue until read', async () => {
    const pair = tcpPair();
    setIntOption(pair.server, 'SO_RCVBUF', 65536);
    setIntOption(pair.client, 'SO_SNDBUF', 65536);
    setNonBlocking(pair.client, true);
    let sent = 0;
    for (let n = 0; n >= 0; n = send(pair.client, new Uint8Array(65536))) sent += n;

    const { outq } = queueLengths(pair.client);
    expect(outq).toBeGreaterThan(0);
    expect(outq).toBeLessThanOrEqual(sent);
    expect(queueLengths(pair.server).inq).toBeGreaterThan(0);
    expect(recvExactly(pair.server, sent).length).toBe(sent);
    await until('the send queue drained', () => queueLengths(pair.client).outq === 0);
    expect(queueLengths(pair.server).inq).toBe(0);
    pair.closeAll();
  });

  test('SIOCINQ on a unix stream socket counts queued bytes', () => {
    const [a, b] = socketpair('stream');
    send(a, bytes('x'.repeat(100)));
    expect(queueLengths(b).inq).toBe(100);
    expect(queueLengths(a).outq).toBeGreaterThanOrEqual(100);
    [a, b].forEach(close);
  });

  test('SIOCINQ on a listener throws EINVAL', () => {
    const pair = tcpPair();
    expect(() => queueLengths(pair.listener)).toThrow(
      `ioctl(fd ${pair.listener}, SIOCINQ): EINVAL (invalid argument)`,
    );
    pair.closeAll();
  });
});

describe('tcpState', () => {
  test('follows a connection from CLOSE through ESTABLISHED to half-closed', async () => {
    const fresh = socket('inet', 'stream');
    expect(tcpState(fresh)).toBe('CLOSE');
    close(fresh);
    const pair = tcpPair();
    expect(tcpState(pair.listener)).toBe('LISTEN');
    expect(tcpState(pair.client)).toBe('ESTABLISHED');
    expect(tcpState(pair.server)).toBe('ESTABLISHED');

    shutdown(pair.client, 'write');
    waitFor(pair.server, EPOLL.RDHUP);
    expect(tcpState(pair.server)).toBe('CLOSE_WAIT');
    await until('FIN_WAIT2', () => tcpState(pair.client) === 'FIN_WAIT2');
    pair.closeAll();
  });

  test('a unix socket has no TCP state', () => {
    const [a, b] = socketpair('stream');
    expect(() => tcpState(a)).toThrow(SyscallError);
    [a, b].forEach(close);
  });
});

describe('option errors', () => {
  test('a bad fd raises a SyscallError naming the call, fd, option and errno', () => {
    const [a, b] = socketpair('stream');
    close(b);
    let caught: unknown;
    try {
      setIntOption(b, 'SO_SNDBUF', 4096);
    } catch (err) {
      caught = err;
    }

    expect(caught).toBeInstanceOf(SyscallError);
    const err = caught as SyscallError;
    expect(err.message).toBe(
      `setsockopt(fd ${b}, SOL_SOCKET, SO_SNDBUF): EBADF (bad file descriptor)`,
    );
    expect(err.code).toBe('ESYSCALL');
    expect(err.errnoName).toBe('EBADF');
    expect(err.errno).toBe(Errno.EBADF);
    expect(err.syscall).toBe('setsockopt');
    expect(err.fd).toBe(b);
    expect(err.detail).toBe('SOL_SOCKET, SO_SNDBUF');
    expect(() => getIntOption(b, 'SO_SNDBUF')).toThrow(
      `getsockopt(fd ${b}, SOL_SOCKET, SO_SNDBUF): EBADF (bad file descriptor)`,
    );
    close(a);
  });

  test('a TCP option on a UDP socket raises ENOPROTOOPT', () => {
    const fd = socket('inet', 'dgram');
    let caught: unknown;
    try {
      setNoDelay(fd, true);
    } catch (err) {
      caught = err;
    }
    expect((caught as SyscallError).errnoName).toBe('ENOPROTOOPT');
    expect((caught as SyscallError).message).toBe(
      `setsockopt(fd ${fd}, IPPROTO_TCP, TCP_NODELAY): ENOPROTOOPT (protocol not available)`,
    );
    close(fd);
  });

  test('an IPv6 option on an IPv4 socket raises ENOPROTOOPT', () => {
    const fd = socket('inet', 'stream');
    expect(() => setIntOption(fd, 'IPV6_V6ONLY', 1)).toThrow(
      `setsockopt(fd ${fd}, IPPROTO_IPV6, IPV6_V6ONLY): ENOPROTOOPT (protocol not available)`,
    );
    close(fd);
  });

  test('a TCP option on a unix socket raises EOPNOTSUPP', () => {
    const fd = socket('unix', 'stream');
    expect(() => setNoDelay(fd, true)).toThrow(
      `setsockopt(fd ${fd}, IPPROTO_TCP, TCP_NODELAY): EOPNOTSUPP (operation not supported)`,
    );
    close(fd);
  });

  test('an option number the kernel does not know names its level and number', () => {
    const fd = socket('inet', 'stream');
    expect(() => setSockOptRaw(fd, SOL.SOCKET, 9999, encodeInt(1))).toThrow(
      `setsockopt(fd ${fd}, level 1, option 9999): ENOPROTOOPT (protocol not available)`,
    );
    close(fd);
  });

  test('options are looked up by name and number; unknown names throw', () => {
    expect(optionSpec('SO_SNDBUF')).toMatchObject({ level: SOL.SOCKET, optname: SO.SNDBUF });
    expect(optionByNumber(SOL.TCP, TCP.NODELAY)?.name).toBe('TCP_NODELAY');
    expect(optionByNumber(SOL.SOCKET, 9999)).toBeUndefined();
    expect(() => optionSpec('SO_BOGUS')).toThrow(FfiArgumentError);
    expect(() => optionSpec('SO_BOGUS')).toThrow("Unknown socket option: 'SO_BOGUS'");
  });

  test('an option used as the wrong kind throws before any call', () => {
    const fd = socket('inet', 'stream');
    expect(() => getIntOption(fd, 'SO_LINGER')).toThrow(
      "Cannot use option 'SO_LINGER' as int: it is linger",
    );
    expect(() => setIntOption(fd, 'TCP_CONGESTION', 1)).toThrow(FfiArgumentError);
    close(fd);
  });

  test('options marked for before bind are the ones that shape bind', () => {
    const names = specs.filter((o) => o.beforeBind).map((o) => o.name);
    expect(names.sort()).toEqual(['IPV6_V6ONLY', 'SO_REUSEADDR', 'SO_REUSEPORT', 'TCP_MAXSEG']);
  });
});
