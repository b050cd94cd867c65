import { describe, expect, test } from 'bun:test';

import {
  accept,
  bind,
  close,
  EPOLL,
  FD_CLOEXEC,
  FfiArgumentError,
  getDescriptorFlags,
  getgid,
  getPeerCred,
  getuid,
  listen,
  MSG,
  pipe,
  read,
  recv,
  recvFdBatches,
  recvFds,
  send,
  sendFdBatches,
  sendFds,
  setTimevalOption,
  socket,
  socketpair,
  TruncatedControlError,
  write,
} from '../../ffi/index.ts';
import {
  bytes,
  finished,
  fdLinks,
  openFdsLinkingTo,
  recvNow,
  spawnBun,
  spawnPython,
  text,
  waitFor,
} from './helpers.ts';

/** `count` socketpairs; each one's first end carries the marker `p:<i>;` to the far end. */
function markedPairs(count: number): [number, number][] {
  const pairs = Array.from({ length: count }, () => socketpair('stream'));
  pairs.forEach(([mine], i) => send(mine, bytes(`p:${i};`)));
  return pairs;
}

/** Reads `c:<i>;` from each fd, then expects end-of-file: the other process closed its end. */
function expectAnswers(fds: readonly number[]): void {
  const wrong: number[] = [];
  fds.forEach((fd, i) => {
    const got = recvNow(fd);
    if (got === null || text(got) !== `c:${i};` || recvNow(fd)?.length !== 0) wrong.push(i);
  });
  expect(wrong).toEqual([]);
}

/**
 * Sends `count` live fds to a separate bun process, which answers through each of them, and
 * checks that no copy of a passed fd is left open on this side.
 */
async function passToChild(count: number, batch: boolean): Promise<void> {
  const [control, childEnd] = socketpair('stream');
  const child = spawnBun('fd-peer.ts', ['recv', '3', batch ? 'batch' : 'single'], [childEnd]);
  close(childEnd);

  const pairs = markedPairs(count);
  const theirs = pairs.map(([, other]) => other);
  const passed = fdLinks(theirs);
  if (batch) sendFdBatches(control, theirs);
  else sendFds(control, theirs, bytes('x'));
  theirs.forEach(close);
  expect(openFdsLinkingTo(passed)).toEqual([]);
  const result = await finished(child);

  expect(result.stderr).toBe('');
  expect(JSON.parse(result.stdout)).toEqual({ count, bad: [], leaked: 0 });
  expect(result.code).toBe(0);
  const mine = pairs.map(([fd]) => fd);
  expectAnswers(mine);
  const kept = fdLinks(mine);
  [...mine, control].forEach(close);
  expect(openFdsLinkingTo(kept)).toEqual([]);
}

/** Receives `count` live fds from a separate bun process and answers through each of them. */
async function takeFromChild(count: number, batch: boolean): Promise<void> {
  const [control, childEnd] = socketpair('stream');
  setTimevalOption(control, 'SO_RCVTIMEO', 20_000_000);
  const child = spawnBun(
    'fd-peer.ts',
    ['send', '3', String(count), batch ? 'batch' : 'single'],
    [childEnd],
  );
  close(childEnd);

  const fds = batch ? recvFdBatches(control) : (recvFds(control)?.fds ?? []);
  expect(fds).toHaveLength(count);
  const received = fdLinks(fds);
  expect(new Set(received).size).toBe(count);
  const wrong = fds.filter((fd, i) => text(recvNow(fd) ?? new Uint8Array()) !== `c:${i};`);
  fds.forEach((fd, i) => send(fd, bytes(`p:${i};`)));
  fds.forEach(close);
  expect(openFdsLinkingTo(received)).toEqual([]);
  close(control);
  const result = await finished(child);

  expect(wrong).toEqual([]);
  expect(result.stderr).toBe('');
  expect(JSON.parse(result.stdout)).toEqual({ count, bad: [], leaked: 0 });
  expect(result.code).toBe(0);
}

describe('passing fds to another bun process', () => {
  test('passes 1 live fd in one message', () => passToChild(1, false));
  test('passes 64 live fds in one message', () => passToChild(64, false));
  test('passes 253 live fds, the most one message takes', () => passToChild(253, false));
  test('passes 600 live fds in batches', () => passToChild(600, true));
  test('receives 64 live fds sent by another process', () => takeFromChild(64, false));
  test('receives 600 live fds sent in batches by another process', () => takeFromChild(600, true));
});

/** Sends `count` live fds to Python, which takes them with socket.recv_fds and answers. */
async function passToPython(count: number): Promise<void> {
  const [control, childEnd] = socketpair('stream');
  const child = spawnPython(['recv', '3', String(count)], [childEnd]);
  close(childEnd);

  const pairs = markedPairs(count);
  const theirs = pairs.map(([, other]) => other);
  sendFds(control, theirs, bytes('x'));
  theirs.forEach(close);
  const result = await finished(child);

  expect(result.stderr).toBe('');
  expect(JSON.parse(result.stdout)).toEqual({ count, bad: [] });
  const mine = pairs.map(([fd]) => fd);
  expectAnswers(mine);
  [...mine, control].forEach(close);
}

/** Takes `count` live fds that Python sent with socket.send_fds, and answers through them. */
async function takeFromPython(count: number): Promise<void> {
  const [control, childEnd] = socketpair('stream');
  setTimevalOption(control, 'SO_RCVTIMEO', 20_000_000);
  const child = spawnPython(['send', '3', String(count)], [childEnd]);
  close(childEnd);

  const got = recvFds(control);
  expect(got).not.toBeNull();
  expect(text(got!.data)).toBe('x');
  expect(got!.fds).toHaveLength(count);
  const wrong = got!.fds.filter((fd, i) => text(recvNow(fd) ?? new Uint8Array()) !== `c:${i};`);
  got!.fds.forEach((fd, i) => send(fd, bytes(`p:${i};`)));
  got!.fds.forEach(close);
  close(control);
  const result = await finished(child);

  expect(wrong).toEqual([]);
  expect(result.stderr).toBe('');
  expect(JSON.parse(result.stdout)).toEqual({ count, bad: [] });
}

describe('passing fds to and from Python', () => {
  test('Python receives 1 live fd sent with sendFds', () => passToPython(1));
  test('Python receives 253 live fds sent with sendFds', () => passToPython(253));
  test('recvFds takes 1 live fd that Python sent with send_fds', () => takeFromPython(1));
  test('recvFds takes 253 live fds that Python sent with send_fds', () => takeFromPython(253));
});

describe('sendFds and recvFds in one process', () => {
  test('received fds are new descriptors for the same open files, close-on-exec by default', () => {
    const [a, b] = socketpair('stream');
    const [r, w] = pipe();
    sendFds(a, [r, w], bytes('hi'));
    const got = recvFds(b)!;

    expect(text(got.data)).toBe('hi');
    expect(got.fds).toHaveLength(2);
    expect(got.fds).not.toContain(r);
    expect(got.fds.map(getDescriptorFlags)).toEqual([FD_CLOEXEC, FD_CLOEXEC]);
    write(got.fds[1]!, bytes('through the copy'));
    const buf = new Uint8Array(32);
    expect(text(buf.subarray(0, read(r, buf)))).toBe('through the copy');
    [a, b, r, w, ...got.fds].forEach(close);
  });

  test('cloexec: false leaves the received fds inheritable', () => {
    const [a, b] = socketpair('stream');
    sendFds(a, [a], bytes('x'));
    const got = recvFds(b, { cloexec: false })!;

    expect(getDescriptorFlags(got.fds[0]!)).toBe(0);
    [a, b, ...got.fds].forEach(close);
  });

  test('a message without fds arrives with an empty fd list', () => {
    const [a, b] = socketpair('seqpacket');
    sendFds(a, [], bytes('plain'));
    const got = recvFds(b)!;

    expect(got.fds).toEqual([]);
    expect(text(got.data)).toBe('plain');
    [a, b].forEach(close);
  });

  test('MSG_PEEK leaves the message queued', () => {
    const [a, b] = socketpair('stream');
    sendFds(a, [], bytes('peeked'));
    expect(text(recvFds(b, { flags: MSG.PEEK })!.data)).toBe('peeked');
    expect(text(recvFds(b)!.data)).toBe('peeked');
    [a, b].forEach(close);
  });

  test('a non-blocking receive with nothing queued returns null', () => {
    const [a, b] = socketpair('stream', { nonblock: true });
    expect(recvFds(b)).toBeNull();
    expect(recvFds(b, { flags: MSG.DONTWAIT })).toBeNull();
    [a, b].forEach(close);
  });

  test('end-of-file arrives as empty data and no fds', () => {
    const [a, b] = socketpair('stream');
    close(a);
    expect(recvFds(b)).toEqual({ data: new Uint8Array(), fds: [], flags: expect.any(Number) });
    close(b);
  });

  test('a datagram larger than maxBytes reports MSG_TRUNC', () => {
    const [a, b] = socketpair('seqpacket');
    sendFds(a, [], bytes('0123456789'));
    const got = recvFds(b, { maxBytes: 4 })!;

    expect(text(got.data)).toBe('0123');
    expect(got.flags & MSG.TRUNC).toBe(MSG.TRUNC);
    [a, b].forEach(close);
  });

  test('sendFds on a full non-blocking socket returns -1', () => {
    const [a, b] = socketpair('stream', { nonblock: true });
    const chunk = new Uint8Array(65536);
    while (send(a, chunk) > 0);
    expect(sendFds(a, [b], bytes('x'))).toBe(-1);
    [a, b].forEach(close);
  });

  test('sendFdBatches and recvFdBatches move zero fds', () => {
    const [a, b] = socketpair('stream');
    sendFdBatches(a, []);
    expect(recvFdBatches(b)).toEqual([]);
    [a, b].forEach(close);
  });
});

describe('fd passing errors', () => {
  test('a control buffer too small raises TruncatedControlError and closes the fds that arrived', () => {
    const [a, b] = socketpair('stream');
    const pairs = Array.from({ length: 3 }, () => socketpair('stream', { nonblock: true }));
    sendFds(
      a,
      pairs.map(([, far]) => far),
      bytes('x'),
    );
    const fars = pairs.map(([, far]) => far);
    const sent = fdLinks(fars);
    const before = openFdsLinkingTo(sent);

    let caught: unknown;
    try {
      recvFds(b, { maxFds: 2 });
    } catch (err) {
      caught = err;
    }

    expect(caught).toBeInstanceOf(TruncatedControlError);
    expect((caught as TruncatedControlError).code).toBe('ECTRUNC');
    expect((caught as TruncatedControlError).message).toBe(
      `recvmsg(fd ${b}): control message truncated: more than 2 fds were sent; the fds that arrived were closed`,
    );
    // The /proc/self/fd entries for the sent sockets are ours alone, as before the call.
    expect(before).toEqual([...fars].sort((x, y) => x - y));
    expect(openFdsLinkingTo(sent)).toEqual(before);
    // No copy of a far end survived anywhere: once ours is closed, each near end sees end-of-file.
    for (const [, far] of pairs) close(far);
    for (const [near] of pairs) expect(recv(near, new Uint8Array(1))).toBe(0);
    [a, b, ...pairs.map(([near]) => near)].forEach(close);
  });

  test('maxFds is exact: one fd of room with two sent is a truncation', () => {
    const [a, b] = socketpair('stream');
    const ends = fdLinks([a, b]);
    sendFds(a, [a, b], bytes('x'));

    expect(() => recvFds(b, { maxFds: 1 })).toThrow(TruncatedControlError);
    expect(openFdsLinkingTo(ends)).toEqual([a, b].sort((x, y) => x - y));
    [a, b].forEach(close);
  });

  test('no control buffer at all drops every fd', () => {
    const [a, b] = socketpair('stream');
    const end = fdLinks([a]);
    sendFds(a, [a], bytes('x'));

    expect(() => recvFds(b, { maxFds: 0 })).toThrow(TruncatedControlError);
    expect(openFdsLinkingTo(end)).toEqual([a]);
    [a, b].forEach(close);
  });

  test('sendFds refuses 254 fds before any call', () => {
    const [a, b] = socketpair('stream');
    const fds = Array.from({ length: 254 }, () => a);

    expect(() => sendFds(a, fds, bytes('x'))).toThrow(FfiArgumentError);
    expect(() => sendFds(a, fds, bytes('x'))).toThrow(
      'Cannot send 254 fds in one message: the kernel takes at most 253; use sendFdBatches',
    );
    expect(recvNow(b)).toBeNull();
    [a, b].forEach(close);
  });

  test('sendFds refuses a message without data', () => {
    const [a, b] = socketpair('stream');
    expect(() => sendFds(a, [a], new Uint8Array())).toThrow(
      'Cannot send fds: at least one data byte is needed',
    );
    [a, b].forEach(close);
  });

  test('sendFds on a bad fd raises EBADF', () => {
    const [a, b] = socketpair('stream');
    close(b);
    expect(() => sendFds(b, [a], bytes('x'))).toThrow(
      `sendmsg(fd ${b}, 1 fds): EBADF (bad file descriptor)`,
    );
    close(a);
  });

  test('sending a closed fd raises EBADF', () => {
    const [a, b] = socketpair('stream');
    const [r, w] = pipe();
    close(r);
    expect(() => sendFds(a, [r], bytes('x'))).toThrow(/EBADF/);
    [a, b, w].forEach(close);
  });

  test('sendFdBatches on a socket that would block throws instead of dropping a batch', () => {
    const [a, b] = socketpair('stream', { nonblock: true });
    while (send(a, new Uint8Array(65536)) > 0);

    expect(() => sendFdBatches(a, [b])).toThrow(FfiArgumentError);
    [a, b].forEach(close);
  });

  test('recvFdBatches closes every fd it got when a batch is out of order', () => {
    const [a, b] = socketpair('stream');
    const header = (total: number, first: number) =>
      new Uint8Array(new Uint32Array([total, first]).buffer);
    const end = fdLinks([a]);
    sendFds(a, [a, a], header(5, 0));
    sendFds(a, [a, a], header(5, 7));

    expect(() => recvFdBatches(b)).toThrow('Cannot receive fd batch: expected index 2, got 7');
    expect(openFdsLinkingTo(end)).toEqual([a]);
    [a, b].forEach(close);
  });

  test('recvFdBatches closes every fd it got when the sender stops early', () => {
    const [a, b] = socketpair('stream');
    const end = fdLinks([a]);
    sendFds(a, [a, a, a], new Uint8Array(new Uint32Array([9, 0]).buffer));
    sendFds(a, [a], bytes('short'));
    close(a);

    expect(() => recvFdBatches(b)).toThrow(
      `Cannot receive fd batch on fd ${b}: the message ended early`,
    );
    expect(openFdsLinkingTo(end)).toEqual([]);
    close(b);
  });
});

describe('getPeerCred', () => {
  test('reports the pid, uid and gid of the process at the other end', async () => {
    const name = `rewire-test-cred-${process.pid}-${Date.now()}`;
    const listener = socket('unix', 'stream');
    bind(listener, { family: 'unix', abstract: name });
    listen(listener, 1);
    const child = Bun.spawn(
      [
        'python3',
        '-c',
        'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(chr(0)+sys.argv[1]); s.recv(1)',
        name,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 },
    );

    waitFor(listener, EPOLL.IN, 20_000);
    const conn = accept(listener)!.fd;
    const cred = getPeerCred(conn);
    close(conn);
    const result = await finished(child);

    expect(result.stderr).toBe('');
    expect(cred).toEqual({ pid: child.pid, uid: getuid(), gid: getgid() });
    close(listener);
  });

  test('a socketpair reports this process', () => {
    const [a, b] = socketpair('stream');
    expect(getPeerCred(a)).toEqual({ pid: process.pid, uid: getuid(), gid: getgid() });
    [a, b].forEach(close);
  });

  test('a pipe is not a socket', () => {
    const [r, w] = pipe();
    expect(() => getPeerCred(r)).toThrow(
      `getsockopt(fd ${r}, SOL_SOCKET, SO_PEERCRED): ENOTSOCK (socket operation on non-socket)`,
    );
    [r, w].forEach(close);
  });
});
