import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';

import {
  accept,
  AF,
  bind,
  close,
  closeRange,
  connect,
  dup,
  dup3,
  EPOLL,
  Errno,
  FD_CLOEXEC,
  FfiArgumentError,
  getDescriptorFlags,
  getPeerName,
  getSockName,
  getStatusFlags,
  isOpen,
  listen,
  MSG,
  O,
  OwnedFd,
  pipe,
  read,
  recv,
  send,
  shutdown,
  SOCK,
  socket,
  socketError,
  socketKind,
  socketpair,
  SyscallError,
  write,
} from '../../ffi/index.ts';
import {
  bytes,
  checkNoFdLeaks,
  fdLinks,
  openFdsLinkingTo,
  recvExactly,
  recvNow,
  sendAll,
  tcpPair,
  text,
  waitFor,
} from './helpers.ts';

checkNoFdLeaks();

/** An fd number well above every open fd, so that it and the next few are free to dup onto. */
function unusedFdNumber(): number {
  return Math.max(...readdirSync('/proc/self/fd').map(Number)) + 100;
}

describe('socket and socketpair', () => {
  test('creates sockets of each family and type, close-on-exec by default', () => {
    const cases = [
      ['inet', 'stream', AF.INET, SOCK.STREAM],
      ['inet6', 'stream', AF.INET6, SOCK.STREAM],
      ['unix', 'stream', AF.UNIX, SOCK.STREAM],
      ['unix', 'seqpacket', AF.UNIX, SOCK.SEQPACKET],
      ['inet', 'dgram', AF.INET, SOCK.DGRAM],
    ] as const;
    for (const [family, type, domain, typeNumber] of cases) {
      const fd = socket(family, type);
      expect(socketKind(fd)).toMatchObject({ domain, type: typeNumber, listening: false });
      expect(getDescriptorFlags(fd)).toBe(FD_CLOEXEC);
      close(fd);
    }
  });

  test('applies non-blocking and leaves close-on-exec off when asked', () => {
    const fd = socket('inet', 'stream', { nonblock: true, cloexec: false });
    expect(getStatusFlags(fd) & O.NONBLOCK).toBe(O.NONBLOCK);
    expect(getDescriptorFlags(fd)).toBe(0);
    close(fd);
  });

  test('a bad protocol raises a SyscallError naming the family and type', () => {
    expect(() => socket('unix', 'stream', {}, 6)).toThrow(
      'socket(unix, stream): EPROTONOSUPPORT (protocol not supported)',
    );
  });

  test('socketpair ends carry bytes both ways and are unnamed', () => {
    const [a, b] = socketpair('stream');
    send(a, bytes('ping'));
    expect(text(recvExactly(b, 4))).toBe('ping');
    send(b, bytes('pong'));
    expect(text(recvExactly(a, 4))).toBe('pong');
    expect(getSockName(a)).toEqual({ family: 'unix' });
    expect(getPeerName(a)).toEqual({ family: 'unix' });
    [a, b].forEach(close);
  });

  test('seqpacket socketpairs keep message boundaries', () => {
    const [a, b] = socketpair('seqpacket');
    send(a, bytes('one'));
    send(a, bytes('three'));
    expect(text(recvNow(b)!)).toBe('one');
    expect(text(recvNow(b)!)).toBe('three');
    [a, b].forEach(close);
  });
});

describe('bind, listen, accept and connect', () => {
  test('connects over IPv4 loopback on port 0 and names both ends', () => {
    const pair = tcpPair('inet');
    const port = (pair.address as { port: number }).port;

    expect(port).toBeGreaterThan(0);
    expect(getPeerName(pair.client)).toEqual({ family: 'inet', address: '127.0.0.1', port });
    expect(getSockName(pair.server)).toEqual({ family: 'inet', address: '127.0.0.1', port });
    expect(getPeerName(pair.server)).toEqual(getSockName(pair.client));
    expect(socketKind(pair.listener).listening).toBe(true);
    pair.closeAll();
  });

  test('connects over IPv6 loopback on port 0', () => {
    const pair = tcpPair('inet6');
    expect(getSockName(pair.client)).toMatchObject({ family: 'inet6', address: '::1' });
    expect(getPeerName(pair.server)).toEqual(getSockName(pair.client));
    sendAll(pair.client, bytes('over v6'));
    expect(text(recvExactly(pair.server, 7))).toBe('over v6');
    pair.closeAll();
  });

  test('accept returns the peer address and honours its flags', () => {
    const listener = socket('inet', 'stream');
    bind(listener, { family: 'inet', address: '127.0.0.1', port: 0 });
    listen(listener, 4);
    const client = socket('inet', 'stream');
    connect(client, getSockName(listener));

    const got = accept(listener, { nonblock: true, cloexec: false })!;
    expect(got.peer).toEqual(getSockName(client));
    expect(getStatusFlags(got.fd) & O.NONBLOCK).toBe(O.NONBLOCK);
    expect(getDescriptorFlags(got.fd)).toBe(0);
    [got.fd, client, listener].forEach(close);
  });

  test('a non-blocking accept with no connection waiting returns null', () => {
    const listener = socket('inet', 'stream', { nonblock: true });
    bind(listener, { family: 'inet', address: '127.0.0.1', port: 0 });
    listen(listener, 4);
    expect(accept(listener)).toBeNull();
    close(listener);
  });

  test('a non-blocking connect completes once the socket is writable', () => {
    const listener = socket('inet', 'stream');
    bind(listener, { family: 'inet', address: '127.0.0.1', port: 0 });
    listen(listener, 4);
    const client = socket('inet', 'stream', { nonblock: true });

    const done = connect(client, getSockName(listener));
    if (!done) waitFor(client, EPOLL.OUT);
    expect(socketError(client)).toBe(0);
    const server = accept(listener)!;
    expect(server.peer).toEqual(getSockName(client));
    [server.fd, client, listener].forEach(close);
  });

  test('a non-blocking connect to a port nobody listens on reports ECONNREFUSED', () => {
    const holder = socket('inet', 'stream');
    bind(holder, { family: 'inet', address: '127.0.0.1', port: 0 });
    const client = socket('inet', 'stream', { nonblock: true });

    const done = connect(client, getSockName(holder));
    expect(done).toBe(false);
    waitFor(client, EPOLL.OUT);
    expect(socketError(client)).toBe(Errno.ECONNREFUSED);
    [client, holder].forEach(close);
  });

  test('a blocking connect to a port nobody listens on throws ECONNREFUSED', () => {
    const holder = socket('inet', 'stream');
    bind(holder, { family: 'inet', address: '127.0.0.1', port: 0 });
    const address = getSockName(holder) as { port: number };
    const client = socket('inet', 'stream');

    expect(() => connect(client, getSockName(holder))).toThrow(
      `connect(fd ${client}, 127.0.0.1:${address.port}): ECONNREFUSED (connection refused)`,
    );
    [client, holder].forEach(close);
  });

  test('binding a port that is taken throws EADDRINUSE naming the address', () => {
    const first = socket('inet', 'stream');
    bind(first, { family: 'inet', address: '127.0.0.1', port: 0 });
    listen(first, 1);
    const taken = getSockName(first) as { port: number };
    const second = socket('inet', 'stream');

    let caught: unknown;
    try {
      bind(second, { family: 'inet', address: '127.0.0.1', port: taken.port });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).errnoName).toBe('EADDRINUSE');
    expect((caught as SyscallError).message).toBe(
      `bind(fd ${second}, 127.0.0.1:${taken.port}): EADDRINUSE (address already in use)`,
    );
    [first, second].forEach(close);
  });

  test('listen on a datagram socket throws EOPNOTSUPP with the backlog', () => {
    const fd = socket('inet', 'dgram');
    expect(() => listen(fd, 5)).toThrow(
      `listen(fd ${fd}, backlog 5): EOPNOTSUPP (operation not supported)`,
    );
    close(fd);
  });

  test('unix sockets connect by path and by abstract name', () => {
    const dir = mkdtempSync('/tmp/rewire-ffi-');
    const path = `${dir}/sock`;
    for (const addr of [
      { family: 'unix', path },
      { family: 'unix', abstract: `rewire-test-${process.pid}-${Date.now()}` },
    ] as const) {
      const listener = socket('unix', 'stream');
      bind(listener, addr);
      listen(listener, 1);
      const client = socket('unix', 'stream');
      connect(client, addr);
      const server = accept(listener)!;

      expect(getSockName(listener)).toEqual(addr);
      expect(getPeerName(client)).toEqual(addr);
      expect(server.peer).toEqual({ family: 'unix' });
      [server.fd, client, listener].forEach(close);
    }
    rmSync(dir, { recursive: true });
  });
});

describe('byte I/O', () => {
  test('send and recv move bytes; recv returns 0 at end-of-file', () => {
    const pair = tcpPair();
    expect(send(pair.client, bytes('hello'))).toBe(5);
    expect(text(recvExactly(pair.server, 5))).toBe('hello');
    close(pair.client);
    waitFor(pair.server, EPOLL.IN);
    expect(recv(pair.server, new Uint8Array(8))).toBe(0);
    close(pair.server);
    close(pair.listener);
  });

  test('recv with MSG_PEEK leaves the bytes queued', () => {
    const [a, b] = socketpair('stream');
    send(a, bytes('abc'));
    const buf = new Uint8Array(8);
    expect(recv(b, buf, MSG.PEEK)).toBe(3);
    expect(recv(b, buf)).toBe(3);
    expect(text(buf.subarray(0, 3))).toBe('abc');
    [a, b].forEach(close);
  });

  test('non-blocking send and recv return -1 when they would block', () => {
    const [a, b] = socketpair('stream', { nonblock: true });
    expect(recv(b, new Uint8Array(8))).toBe(-1);
    let sent = 0;
    for (let n = 0; n >= 0; n = send(a, new Uint8Array(65536))) sent += n;
    expect(sent).toBeGreaterThan(0);
    expect(send(a, bytes('x'))).toBe(-1);
    [a, b].forEach(close);
  });

  test('send to a peer that is gone throws EPIPE instead of raising SIGPIPE', () => {
    const [a, b] = socketpair('stream');
    close(b);
    expect(() => send(a, bytes('x'))).toThrow(`send(fd ${a}): EPIPE (broken pipe)`);
    close(a);
  });

  test('an empty send is a no-op and an empty recv buffer is refused', () => {
    const [a, b] = socketpair('stream');
    expect(send(a, new Uint8Array())).toBe(0);
    expect(() => recv(b, new Uint8Array())).toThrow(FfiArgumentError);
    [a, b].forEach(close);
  });

  test('pipe read and write move bytes; a non-blocking pipe returns -1 when empty or full', () => {
    const [r, w] = pipe({ nonblock: true });
    expect(getDescriptorFlags(r)).toBe(FD_CLOEXEC);
    const buf = new Uint8Array(16);
    expect(read(r, buf)).toBe(-1);
    expect(write(w, bytes('piped'))).toBe(5);
    expect(text(buf.subarray(0, read(r, buf)))).toBe('piped');
    expect(write(w, new Uint8Array())).toBe(0);
    while (write(w, new Uint8Array(65536)) > 0);
    expect(write(w, bytes('x'))).toBe(-1);
    close(w);
    while (read(r, new Uint8Array(65536)) > 0);
    expect(read(r, buf)).toBe(0);
    close(r);
  });

  test('a blocking pipe without flags is inheritable', () => {
    const [r, w] = pipe({ cloexec: false });
    expect(getDescriptorFlags(r)).toBe(0);
    expect(getStatusFlags(w) & O.NONBLOCK).toBe(0);
    [r, w].forEach(close);
  });
});

describe('shutdown', () => {
  test('shutdown of writing gives the peer end-of-file while it can still send back', () => {
    const pair = tcpPair();
    shutdown(pair.client, 'write');
    waitFor(pair.server, EPOLL.RDHUP);
    expect(recv(pair.server, new Uint8Array(4))).toBe(0);
    send(pair.server, bytes('back'));
    expect(text(recvExactly(pair.client, 4))).toBe('back');
    pair.closeAll();
  });

  test('shutdown of reading makes recv return 0; both ends it both ways', () => {
    const [a, b] = socketpair('stream');
    shutdown(a, 'read');
    expect(recv(a, new Uint8Array(4))).toBe(0);
    shutdown(b, 'both');
    expect(() => send(b, bytes('x'))).toThrow(/EPIPE/);
    [a, b].forEach(close);
  });

  test('shutdown of an unconnected socket throws ENOTCONN', () => {
    const fd = socket('inet', 'stream');
    expect(() => shutdown(fd, 'both')).toThrow(
      `shutdown(fd ${fd}, both): ENOTCONN (transport endpoint is not connected)`,
    );
    close(fd);
  });
});

describe('close, dup and close_range', () => {
  test('close ends the socket: the peer sees end-of-file', () => {
    const [a, b] = socketpair('stream');
    const link = fdLinks([a]);
    close(a);
    expect(openFdsLinkingTo(link)).toEqual([]);
    expect(recv(b, new Uint8Array(1))).toBe(0);
    close(b);
  });

  test('closing a closed fd throws EBADF', () => {
    const [a, b] = socketpair('stream');
    close(a);
    let caught: unknown;
    try {
      close(a);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).message).toBe(`close(fd ${a}): EBADF (bad file descriptor)`);
    close(b);
  });

  test('dup gives an inheritable copy of the same socket', () => {
    const [a, b] = socketpair('stream');
    const copy = dup(a);
    expect(copy).not.toBe(a);
    expect(getDescriptorFlags(copy)).toBe(0);
    close(a);
    send(copy, bytes('via copy'));
    expect(text(recvExactly(b, 8))).toBe('via copy');
    [copy, b].forEach(close);
  });

  test('dup3 places a copy at a chosen number, close-on-exec when asked', () => {
    const [a, b] = socketpair('stream');
    const target = unusedFdNumber();
    expect(dup3(a, target)).toBe(target);
    expect(getDescriptorFlags(target)).toBe(0);
    expect(dup3(a, target + 1, true)).toBe(target + 1);
    expect(getDescriptorFlags(target + 1)).toBe(FD_CLOEXEC);
    send(target + 1, bytes('z'));
    expect(text(recvExactly(b, 1))).toBe('z');
    [a, b, target, target + 1].forEach(close);
  });

  test('dup of a closed fd throws EBADF; dup3 names the target', () => {
    const [a, b] = socketpair('stream');
    close(b);
    expect(() => dup(b)).toThrow(`dup(fd ${b}): EBADF (bad file descriptor)`);
    expect(() => dup3(b, 900)).toThrow(`dup3(fd ${b}, to fd 900): EBADF (bad file descriptor)`);
    close(a);
  });

  test('closeRange closes every fd in the range and nothing else', () => {
    const [a, b] = socketpair('stream');
    const first = unusedFdNumber();
    for (let i = 0; i < 4; i++) dup3(a, first + i);
    const outside = dup3(a, first + 5);

    closeRange(first, first + 4);
    expect([0, 1, 2, 3].map((i) => isOpen(first + i))).toEqual([false, false, false, false]);
    expect(isOpen(outside)).toBe(true);
    close(outside);
    close(a);
    expect(recv(b, new Uint8Array(1))).toBe(0);
    close(b);
  });

  test('closeRange with CLOSE_RANGE_CLOEXEC marks the fds instead of closing them', () => {
    const [a, b] = socketpair('stream');
    const first = unusedFdNumber();
    dup3(a, first);
    dup3(a, first + 1);

    closeRange(first, first + 1, 4);
    expect([first, first + 1].map(getDescriptorFlags)).toEqual([FD_CLOEXEC, FD_CLOEXEC]);
    [a, b, first, first + 1].forEach(close);
  });

  test('closeRange with first above last throws EINVAL', () => {
    expect(() => closeRange(10, 5)).toThrow('close_range(10..5): EINVAL (invalid argument)');
  });
});

describe('OwnedFd', () => {
  test('closes its fd at the end of a using block', () => {
    const [a, b] = socketpair('stream');
    {
      using owned = new OwnedFd(a);
      expect(owned.fd).toBe(a);
    }
    expect(recv(b, new Uint8Array(1))).toBe(0);
    close(b);
  });

  test('release hands the fd back and later use of the holder throws', () => {
    const [a, b] = socketpair('stream');
    let released: number;
    {
      using owned = new OwnedFd(a);
      released = owned.release();
      expect(() => owned.fd).toThrow('Cannot use fd: it was already closed or released');
    }
    expect(released).toBe(a);
    send(a, bytes('still open'));
    expect(text(recvExactly(b, 10))).toBe('still open');
    [a, b].forEach(close);
  });

  test('disposing twice closes once', () => {
    const [a, b] = socketpair('stream');
    const owned = new OwnedFd(a);
    owned[Symbol.dispose]();
    const reused = dup(b); // may take a's old number
    owned[Symbol.dispose]();
    expect(isOpen(reused)).toBe(true);
    [reused, b].forEach(close);
  });
});
