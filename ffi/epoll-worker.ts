/**
 * The poller thread: blocks in epoll_wait on the epoll fd it is given and posts each batch of
 * ready events to the thread that started it, as a flat Float64Array [data, events, ...].
 *
 * It owns nothing: the starting thread registers fds with EPOLLONESHOT and re-arms them, so a
 * reported fd stays quiet until it is waited on again. The wait is bounded (250 ms) so that the
 * thread notices when it is told to stop.
 */
import { EpollWaiter } from './epoll.ts';

declare const self: Worker;

let running = true;

self.onmessage = (event: MessageEvent<{ epfd?: number; stop?: boolean }>) => {
  if (event.data.stop) {
    running = false;
    return;
  }
  if (event.data.epfd !== undefined) void loop(event.data.epfd);
};

async function loop(epfd: number): Promise<void> {
  const waiter = new EpollWaiter(epfd, 1024);
  while (running) {
    const ready = waiter.wait(250);
    if (ready.length > 0) {
      const flat = new Float64Array(ready.length * 2);
      ready.forEach((r, i) => {
        flat[i * 2] = r.data;
        flat[i * 2 + 1] = r.events;
      });
      self.postMessage(flat);
    }
    // Let this thread's event loop deliver a stop message between waits.
    if (ready.length === 0) await Promise.resolve();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
