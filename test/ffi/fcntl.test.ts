import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';

import {
  close,
  dupAtLeast,
  FD_CLOEXEC,
  getDescriptorFlags,
  getOwner,
  getpid,
  getSignal,
  getStatusFlags,
  isOpen,
  O,
  pipe,
  RecordedStatusFlags,
  recv,
  send,
  setCloseOnExec,
  setDescriptorFlags,
  setNonBlocking,
  setOwner,
  setSignal,
  setStatusFlags,
  socket,
  socketpair,
  SyscallError,
} from '../../ffi/index.ts';
import { bytes, LineReader, recvExactly, spawnBun, text } from './helpers.ts';

const SIGUSR2 = 12;

/** This process's process group, from /proc/self/stat. */
function processGroup(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe('file status flags', () => {
  test('setNonBlocking turns O_NONBLOCK on and off and a recv then returns -1 or waits', () => {
    const [a, b] = socketpair('stream');
    expect(getStatusFlags(b) & O.NONBLOCK).toBe(0);

    setNonBlocking(b, true);
    expect(getStatusFlags(b) & O.NONBLOCK).toBe(O.NONBLOCK);
    expect(recv(b, new Uint8Array(1))).toBe(-1);
    setNonBlocking(b, false);
    expect(getStatusFlags(b) & O.NONBLOCK).toBe(0);
    send(a, bytes('!'));
    expect(recv(b, new Uint8Array(1))).toBe(1);
    [a, b].forEach(close);
  });

  test('O_ASYNC is set and cleared with setStatusFlags, keeping O_NONBLOCK', () => {
    const [a, b] = socketpair('stream');
    const flags = getStatusFlags(a);

    setStatusFlags(a, flags | O.ASYNC | O.NONBLOCK);
    expect(getStatusFlags(a) & RecordedStatusFlags).toBe(O.ASYNC | O.NONBLOCK);
    setStatusFlags(a, getStatusFlags(a) & ~O.ASYNC);
    expect(getStatusFlags(a) & RecordedStatusFlags).toBe(O.NONBLOCK);
    [a, b].forEach(close);
  });

  test('the access mode shows in the status flags', () => {
    const [r, w] = pipe();
    const [a, b] = socketpair('stream');
    expect(getStatusFlags(r) & 3).toBe(O.RDONLY);
    expect(getStatusFlags(w) & 3).toBe(O.WRONLY);
    expect(getStatusFlags(a) & 3).toBe(O.RDWR);
    [r, w, a, b].forEach(close);
  });
});

describe('descriptor flags', () => {
  test('FD_CLOEXEC is set and cleared with setCloseOnExec and setDescriptorFlags', () => {
    const fd = socket('inet', 'stream');
    expect(getDescriptorFlags(fd)).toBe(FD_CLOEXEC);
    setCloseOnExec(fd, false);
    expect(getDescriptorFlags(fd)).toBe(0);
    setCloseOnExec(fd, true);
    expect(getDescriptorFlags(fd)).toBe(FD_CLOEXEC);
    setDescriptorFlags(fd, 0);
    expect(getDescriptorFlags(fd)).toBe(0);
    close(fd);
  });

  test('dupAtLeast copies to a number at or above the minimum, close-on-exec', () => {
    const [a, b] = socketpair('stream');
    const copy = dupAtLeast(a, 500);
    expect(copy).toBeGreaterThanOrEqual(500);
    expect(getDescriptorFlags(copy)).toBe(FD_CLOEXEC);
    close(a);
    send(copy, bytes('copy'));
    expect(text(recvExactly(b, 4))).toBe('copy');
    [copy, b].forEach(close);
  });

  test('isOpen tells an open fd from a closed one', () => {
    const [a, b] = socketpair('stream');
    expect(isOpen(a)).toBe(true);
    close(a);
    expect(isOpen(a)).toBe(false);
    expect(isOpen(-1)).toBe(false);
    close(b);
  });
});

describe('owner and signal', () => {
  test('F_SETOWN to a pid reads back with F_GETOWN; 0 clears it', () => {
    const fd = socket('inet', 'stream');
    expect(getOwner(fd)).toBe(0);
    setOwner(fd, getpid());
    expect(getOwner(fd)).toBe(process.pid);
    setOwner(fd, 0);
    expect(getOwner(fd)).toBe(0);
    close(fd);
  });

  test('F_SETOWN to a process group reads back negative', () => {
    const fd = socket('inet', 'stream');
    const group = processGroup();
    setOwner(fd, -group);
    expect(getOwner(fd)).toBe(-group);
    close(fd);
  });

  test('F_SETOWN to a process that does not exist throws ESRCH', () => {
    const fd = socket('inet', 'stream');
    expect(() => setOwner(fd, 0x3ffffff0)).toThrow(
      `fcntl(fd ${fd}, F_SETOWN, ${0x3ffffff0}): ESRCH (no such process)`,
    );
    close(fd);
  });

  test('F_SETSIG reads back with F_GETSIG; 0 restores SIGIO', () => {
    const fd = socket('inet', 'stream');
    expect(getSignal(fd)).toBe(0);
    setSignal(fd, 40);
    expect(getSignal(fd)).toBe(40);
    setSignal(fd, 0);
    expect(getSignal(fd)).toBe(0);
    close(fd);
  });

  test('F_SETSIG with a signal that does not exist throws EINVAL', () => {
    const fd = socket('inet', 'stream');
    expect(() => setSignal(fd, 1000)).toThrow(
      `fcntl(fd ${fd}, F_SETSIG, 1000): EINVAL (invalid argument)`,
    );
    close(fd);
  });

  test('with O_ASYNC, owner and signal set, arriving data signals the owner process', async () => {
    const child = spawnBun('holder.ts', [], [], 'pipe');
    const lines = new LineReader(child.stdout);
    const { pid } = JSON.parse(await lines.next()) as { pid: number };
    const [a, b] = socketpair('stream');

    setOwner(a, pid);
    setSignal(a, SIGUSR2);
    setStatusFlags(a, getStatusFlags(a) | O.ASYNC);
    send(b, bytes('wake'));

    expect(await lines.next()).toBe('signal SIGUSR2');
    void child.stdin?.end();
    expect(await child.exited).toBe(0);
    [a, b].forEach(close);
  });
});

describe('fcntl errors', () => {
  test('a closed fd raises EBADF naming the command', () => {
    const [a, b] = socketpair('stream');
    close(b);
    let caught: unknown;
    try {
      getStatusFlags(b);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SyscallError);
    expect((caught as SyscallError).message).toBe(
      `fcntl(fd ${b}, F_GETFL): EBADF (bad file descriptor)`,
    );
    expect(() => setStatusFlags(b, O.NONBLOCK)).toThrow(
      `fcntl(fd ${b}, F_SETFL, ${O.NONBLOCK}): EBADF (bad file descriptor)`,
    );
    expect(() => getOwner(b)).toThrow(`fcntl(fd ${b}, F_GETOWN_EX): EBADF (bad file descriptor)`);
    expect(() => dupAtLeast(b, 10)).toThrow(/F_DUPFD_CLOEXEC, 10\): EBADF/);
    close(a);
  });
});
