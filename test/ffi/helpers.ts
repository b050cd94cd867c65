/**
 * Shared pieces of the ffi tests: fd counting, waits with deadlines on real events, loopback
 * connections on port 0 and child processes running the fixtures beside this file.
 */
import { afterAll, beforeAll, expect } from 'bun:test';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

import {
  accept,
  bind,
  close,
  connect,
  EPOLL,
  epollCreate,
  epollCtl,
  EpollWaiter,
  getSockName,
  listen,
  MSG,
  recv,
  send,
  socket,
  type Family,
  type SockAddr,
} from '../../ffi/index.ts';

const fixtures = join(import.meta.dir, 'fixtures');

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** What each fd refers to, as /proc/self/fd shows it (`socket:[12345]`, `pipe:[678]`). */
export function fdLinks(fds: readonly number[]): string[] {
  return fds.map((fd) => readlinkSync(`/proc/self/fd/${fd}`));
}

/**
 * The fds of this process that refer to any of `links`, in ascending order. Leak checks use
 * this rather than a count of all fds: bun opens and closes its own (a finished child's stdio
 * sockets, its pidfd) on its own schedule.
 */
export function openFdsLinkingTo(links: readonly string[]): number[] {
  const wanted = new Set(links);
  const found: number[] = [];
  for (const entry of readdirSync('/proc/self/fd')) {
    try {
      if (wanted.has(readlinkSync(`/proc/self/fd/${entry}`))) found.push(Number(entry));
    } catch {
      // closed since the directory was read
    }
  }
  return found.sort((x, y) => x - y);
}

/**
 * The sockets, pipes and anonymous-inode fds (epoll, eventfd, pidfd) of this process, the
 * kinds ffi/ makes, as `fd -> what it refers to`. Files are left out: bun reads /proc itself.
 */
function fdTable(): string[] {
  const table: string[] = [];
  for (const entry of readdirSync('/proc/self/fd')) {
    try {
      const link = readlinkSync(`/proc/self/fd/${entry}`);
      if (/^(socket|pipe|anon_inode):/.test(link)) table.push(`${entry} -> ${link}`);
    } catch {
      // closed since the directory was read
    }
  }
  return table;
}

/**
 * Fails the test file when it ends with a socket, pipe, epoll fd or eventfd open that it did
 * not start with. For files that start no child processes or workers, whose fds bun closes on
 * its own schedule.
 */
export function checkNoFdLeaks(): void {
  let before = new Set<string>();
  beforeAll(() => {
    before = new Set(fdTable());
  });
  afterAll(() => {
    expect(fdTable().filter((entry) => !before.has(entry))).toEqual([]);
  });
}

/** Waits for `events` on `fd` with epoll, for at most `ms`; returns the events that fired. */
export function waitFor(fd: number, events: number, ms = 5000): number {
  const epfd = epollCreate();
  try {
    epollCtl(epfd, 'add', fd, events);
    const ready = new EpollWaiter(epfd, 1).wait(ms);
    if (ready.length === 0) throw new Error(`fd ${fd} was not ready within ${ms} ms`);
    return ready[0]!.events;
  } finally {
    close(epfd);
  }
}

/**
 * Polls `check` until it holds, failing after `ms`. Only for state that no fd reports (a
 * process's run state, a TCP queue emptied by an ACK).
 */
export async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await Bun.sleep(1);
  }
}

/** Sends all of `data`, waiting for room with epoll when the socket is non-blocking. */
export function sendAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    const n = send(fd, data.subarray(off));
    if (n < 0) waitFor(fd, EPOLL.OUT);
    else off += n;
  }
}

/** Reads exactly `n` bytes (fewer only at end-of-file), waiting at most `ms` for each part. */
export function recvExactly(fd: number, n: number, ms = 5000): Uint8Array {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    waitFor(fd, EPOLL.IN | EPOLL.RDHUP, ms);
    const got = recv(fd, out.subarray(off), MSG.DONTWAIT);
    if (got === 0) break;
    if (got > 0) off += got;
  }
  return out.subarray(0, off);
}

/** Whatever is queued on `fd` right now, without waiting; null when nothing is. */
export function recvNow(fd: number, max = 256): Uint8Array | null {
  const buf = new Uint8Array(max);
  const n = recv(fd, buf, MSG.DONTWAIT);
  return n < 0 ? null : buf.subarray(0, n);
}

/** A connected loopback TCP pair on port 0, and its listener. */
export interface TcpPair {
  listener: number;
  client: number;
  server: number;
  address: SockAddr;
  closeAll(): void;
}

export function tcpPair(family: Extract<Family, 'inet' | 'inet6'> = 'inet'): TcpPair {
  const listener = socket(family, 'stream');
  const address = family === 'inet' ? '127.0.0.1' : '::1';
  bind(listener, { family, address, port: 0 });
  listen(listener, 8);
  const bound = getSockName(listener);
  const client = socket(family, 'stream');
  connect(client, bound);
  const server = accept(listener)!.fd;
  return {
    listener,
    client,
    server,
    address: bound,
    closeAll() {
      for (const fd of [client, server, listener]) close(fd);
    },
  };
}

/** Runs a fixture script in a separate bun process, with `extra` fds at 3, 4, ... */
export function spawnBun(
  script: string,
  args: readonly string[],
  extra: readonly number[] = [],
  stdin: 'pipe' | 'ignore' = 'ignore',
) {
  return Bun.spawn([process.execPath, join(fixtures, script), ...args], {
    stdio: [stdin, 'pipe', 'pipe', ...extra],
    timeout: 30_000,
  });
}

/** Runs the Python fixture with `extra` fds at 3, 4, ... */
export function spawnPython(args: readonly string[], extra: readonly number[] = []) {
  return Bun.spawn(['python3', join(fixtures, 'fd_peer.py'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe', ...extra],
    timeout: 30_000,
  });
}

/** Reads a child's output line by line. */
export class LineReader {
  readonly #reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> };
  #buffered = '';

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next line, without its newline; throws when the stream ends first. */
  async next(): Promise<string> {
    while (!this.#buffered.includes('\n')) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`Output ended before a full line: '${this.#buffered}'`);
      this.#buffered += decoder.decode(value, { stream: true });
    }
    const end = this.#buffered.indexOf('\n');
    const line = this.#buffered.slice(0, end);
    this.#buffered = this.#buffered.slice(end + 1);
    return line;
  }
}

/** Waits for a child to end and returns its exit code, stdout and stderr. */
export async function finished(child: {
  exited: Promise<number>;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
}): Promise<{ code: number; stdout: string; stderr: string }> {
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}
