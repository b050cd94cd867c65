/**
 * The service manager's side of sd_notify, for tests: an AF_UNIX datagram socket bound at a
 * path or an abstract name, read without blocking until a wanted message arrives.
 */
import { bind, close, recv, socket } from '../../ffi/socket.ts';

export class NotifyListener implements Disposable {
  readonly fd: number;
  readonly messages: string[] = [];

  /** `name` as NOTIFY_SOCKET takes it: a path, or `@abstract`. */
  constructor(readonly name: string) {
    this.fd = socket('unix', 'dgram', { nonblock: true });
    const addr = name.startsWith('@')
      ? ({ family: 'unix', abstract: name.slice(1) } as const)
      : ({ family: 'unix', path: name } as const);
    bind(this.fd, addr);
  }

  #drain(): void {
    const buf = new Uint8Array(4096);
    for (let n = recv(this.fd, buf); n >= 0; n = recv(this.fd, buf)) {
      this.messages.push(new TextDecoder().decode(buf.subarray(0, n)));
    }
  }

  /** The first message with a line `line`, polling the socket until `ms` have passed. */
  async waitFor(line: string, ms = 20000, alive: () => boolean = () => true): Promise<string> {
    const until = Date.now() + ms;
    for (;;) {
      this.#drain();
      const found = this.messages.find((m) => m.split('\n').includes(line));
      if (found !== undefined) return found;
      if (Date.now() > until || !alive()) {
        throw new Error(
          `No '${line}' on ${this.name} within ${ms} ms; got ${JSON.stringify(this.messages)}`,
        );
      }
      await Bun.sleep(10);
    }
  }

  [Symbol.dispose](): void {
    close(this.fd);
  }
}
