import { describe, expect, test } from 'bun:test';

import {
  close,
  EPOLL,
  epollCreate,
  epollCtl,
  eventfdCreate,
  eventfdWrite,
} from '../../ffi/index.ts';

// No fd-leak check here: a worker's runtime keeps its own epoll and eventfd after it ends.

describe('poller thread', () => {
  test('posts the ready fds of its epoll fd and stops when told', async () => {
    const epfd = epollCreate();
    const fd = eventfdCreate();
    epollCtl(epfd, 'add', fd, EPOLL.IN | EPOLL.ONESHOT, 2 ** 35 + 1);
    const worker = new Worker(new URL('../../ffi/epoll-worker.ts', import.meta.url).href);
    const posted = new Promise<Float64Array>((resolve) => {
      worker.onmessage = (event: MessageEvent<Float64Array>) => resolve(event.data);
    });

    worker.postMessage({ epfd });
    eventfdWrite(fd);
    expect(Array.from(await posted)).toEqual([2 ** 35 + 1, EPOLL.IN]);
    worker.postMessage({ stop: true });
    await worker.terminate();
    [fd, epfd].forEach(close);
  });
});
