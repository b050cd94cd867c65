import { describe, expect, test } from 'bun:test';

import {
  arch,
  close,
  EPOLL,
  epollCreate,
  epollCtl,
  EpollWaiter,
  eventfdCreate,
  eventfdRead,
  eventfdWrite,
  FD_CLOEXEC,
  getDescriptorFlags,
  getStatusFlags,
  layoutFor,
  O,
  recv,
  send,
  Sizes,
  socketpair,
} from '../../ffi/index.ts';
import { bytes, checkNoFdLeaks } from './helpers.ts';

checkNoFdLeaks();

describe('architecture layout', () => {
  test('x86_64 packs struct epoll_event into 12 bytes', () => {
    expect(layoutFor('x64').epollEvent).toEqual({ size: 12, dataOffset: 4 });
  });

  test('aarch64 aligns struct epoll_event to 16 bytes', () => {
    expect(layoutFor('arm64').epollEvent).toEqual({ size: 16, dataOffset: 8 });
  });

  test('the pidfd and close_range numbers are shared; gettid differs', () => {
    const x64 = layoutFor('x64').sys;
    const arm64 = layoutFor('arm64').sys;
    expect({ ...x64, gettid: 0 }).toEqual({ ...arm64, gettid: 0 });
    expect([x64.gettid, arm64.gettid]).toEqual([186, 178]);
  });

  test('any other architecture is refused', () => {
    expect(() => layoutFor('ia32')).toThrow(
      "Cannot run on this architecture: 'ia32' is not x64 or arm64",
    );
  });

  test('the layout in use is the one of this machine', () => {
    expect(arch).toBe(layoutFor(process.arch));
    expect(arch.name).toBe(process.arch as 'x64' | 'arm64');
  });

  test('the LP64 struct sizes are the glibc ones', () => {
    expect(Sizes).toEqual({
      sockaddrIn: 16,
      sockaddrIn6: 28,
      sockaddrUn: 110,
      sockaddrStorage: 128,
      sunPath: 108,
      msghdr: 56,
      iovec: 16,
      cmsghdr: 16,
      ucred: 12,
      linger: 8,
      timeval: 16,
    });
  });
});

describe('epoll', () => {
  test('the waiter sees a socket become readable and reports its data', () => {
    const epfd = epollCreate();
    const [a, b] = socketpair('stream');
    epollCtl(epfd, 'add', b, EPOLL.IN);
    const waiter = new EpollWaiter(epfd);

    expect(waiter.wait(0)).toEqual([]);
    send(a, bytes('x'));
    expect(waiter.wait(5000)).toEqual([{ data: b, events: EPOLL.IN }]);
    recv(b, new Uint8Array(1));
    expect(waiter.wait(0)).toEqual([]);
    [a, b, epfd].forEach(close);
  });

  test('64-bit data and several events at once come back intact', () => {
    const epfd = epollCreate();
    const pairs = [0, 1, 2].map(() => socketpair('stream'));
    const tags = [2 ** 40 + 5, 2 ** 33 + 7, 0xffff_ffff];
    pairs.forEach(([, b], i) => epollCtl(epfd, 'add', b, EPOLL.IN, tags[i]));
    pairs.forEach(([a]) => send(a, bytes('x')));

    const ready = new EpollWaiter(epfd, 8).wait(5000);
    expect(ready.map((e) => e.data).sort()).toEqual([...tags].sort());
    expect(ready.every((e) => e.events === EPOLL.IN)).toBe(true);
    [...pairs.flat(), epfd].forEach(close);
  });

  test('mod changes the events waited for and del stops them', () => {
    const epfd = epollCreate();
    const [a, b] = socketpair('stream');
    const waiter = new EpollWaiter(epfd);
    epollCtl(epfd, 'add', a, EPOLL.IN);
    expect(waiter.wait(0)).toEqual([]);

    epollCtl(epfd, 'mod', a, EPOLL.OUT, 77);
    expect(waiter.wait(5000)).toEqual([{ data: 77, events: EPOLL.OUT }]);
    epollCtl(epfd, 'del', a, 0);
    expect(waiter.wait(0)).toEqual([]);
    [a, b, epfd].forEach(close);
  });

  test('a peer that closes shows as HUP and RDHUP', () => {
    const epfd = epollCreate();
    const [a, b] = socketpair('stream');
    epollCtl(epfd, 'add', b, EPOLL.IN | EPOLL.RDHUP);
    close(a);

    const [event] = new EpollWaiter(epfd).wait(5000);
    expect(event!.events & (EPOLL.IN | EPOLL.RDHUP | EPOLL.HUP)).toBe(
      EPOLL.IN | EPOLL.RDHUP | EPOLL.HUP,
    );
    [b, epfd].forEach(close);
  });

  test('a wait with nothing ready returns empty after its timeout', () => {
    const epfd = epollCreate();
    const started = performance.now();
    expect(new EpollWaiter(epfd, 1).wait(20)).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
    close(epfd);
  });

  test('the epoll fd is close-on-exec', () => {
    const epfd = epollCreate();
    expect(getDescriptorFlags(epfd)).toBe(FD_CLOEXEC);
    close(epfd);
  });

  test('adding an fd twice throws EEXIST and deleting an unknown one ENOENT', () => {
    const epfd = epollCreate();
    const [a, b] = socketpair('stream');
    epollCtl(epfd, 'add', a, EPOLL.IN);

    expect(() => epollCtl(epfd, 'add', a, EPOLL.IN)).toThrow(
      `epoll_ctl(fd ${epfd}, add fd ${a}): EEXIST (file exists)`,
    );
    expect(() => epollCtl(epfd, 'del', b, 0)).toThrow(
      `epoll_ctl(fd ${epfd}, del fd ${b}): ENOENT (no such file or directory)`,
    );
    [a, b, epfd].forEach(close);
  });

  test('waiting on an fd that is not an epoll fd throws EINVAL', () => {
    const [a, b] = socketpair('stream');
    expect(() => new EpollWaiter(a).wait(0)).toThrow(
      `epoll_wait(fd ${a}): EINVAL (invalid argument)`,
    );
    [a, b].forEach(close);
  });
});

describe('eventfd', () => {
  test('writes add up and a read returns the sum and resets it', () => {
    const fd = eventfdCreate();
    expect(eventfdRead(fd)).toBe(0);
    eventfdWrite(fd);
    eventfdWrite(fd, 41);
    expect(eventfdRead(fd)).toBe(42);
    expect(eventfdRead(fd)).toBe(0);
    close(fd);
  });

  test('starts at its initial value and is non-blocking and close-on-exec', () => {
    const fd = eventfdCreate(5);
    expect(getStatusFlags(fd) & O.NONBLOCK).toBe(O.NONBLOCK);
    expect(getDescriptorFlags(fd)).toBe(FD_CLOEXEC);
    expect(eventfdRead(fd)).toBe(5);
    close(fd);
  });

  test('wakes an epoll waiter when written', () => {
    const epfd = epollCreate();
    const fd = eventfdCreate();
    epollCtl(epfd, 'add', fd, EPOLL.IN);
    const waiter = new EpollWaiter(epfd);
    expect(waiter.wait(0)).toEqual([]);

    eventfdWrite(fd, 3);
    expect(waiter.wait(5000)).toEqual([{ data: fd, events: EPOLL.IN }]);
    expect(eventfdRead(fd)).toBe(3);
    expect(waiter.wait(0)).toEqual([]);
    [fd, epfd].forEach(close);
  });

  test('a write to a closed eventfd throws EBADF', () => {
    const fd = eventfdCreate();
    close(fd);
    expect(() => eventfdWrite(fd)).toThrow(`write(fd ${fd}, eventfd): EBADF (bad file descriptor)`);
    expect(() => eventfdRead(fd)).toThrow(`read(fd ${fd}, eventfd): EBADF (bad file descriptor)`);
  });
});
