/**
 * Exact reads and whole writes on a non-blocking fd, through the reactor, each bounded by a
 * deadline. `readOpening` reads a connection's opening record and not a byte more.
 */
import { recv, send } from '../../ffi/index.ts';
import { ProtocolError } from '../errors.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { OPENING_BYTES, openingStartsWell, parseOpening, type Opening } from './opening.ts';

/** The peer closed the connection before the expected bytes arrived. */
export class PeerClosedError extends ProtocolError {
  constructor(what: string) {
    super(`Connection closed by the peer while reading ${what}`, 'EPEER_CLOSED');
  }
}

/** Whether `err` says the other end of a connection went away: it closed it, or reset it. */
export function peerWentAway(err: unknown): boolean {
  const errno = (err as { errnoName?: string }).errnoName;
  return (
    (err as { code?: string }).code === 'EPEER_CLOSED' ||
    errno === 'ECONNRESET' ||
    errno === 'EPIPE'
  );
}

/** Reads at least one byte into `buf`, waiting for it; throws at end-of-file. */
async function recvSome(
  reactor: Reactor,
  fd: number,
  buf: Uint8Array,
  deadline: number,
  what: string,
): Promise<number> {
  for (;;) {
    const n = recv(fd, buf);
    if (n === 0) throw new PeerClosedError(what);
    if (n > 0) return n;
    await reactor.readable(fd, deadline, what);
  }
}

/**
 * Sends all of `data` to `fd`: returns undefined when it went out at once (the usual case, with
 * no promise to wait for), or the promise of writing the rest.
 */
export function sendAll(
  reactor: Reactor,
  fd: number,
  data: Uint8Array,
  deadline: number,
  what = 'data',
): Promise<void> | undefined {
  const n = send(fd, data);
  if (n === data.length) return undefined;
  return writeAll(reactor, fd, n > 0 ? data.subarray(n) : data, deadline, what);
}

/** Writes all of `data` to `fd`. */
export async function writeAll(
  reactor: Reactor,
  fd: number,
  data: Uint8Array,
  deadline: number,
  what = 'data',
): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const n = send(fd, off === 0 ? data : data.subarray(off));
    if (n < 0) {
      await reactor.writable(fd, deadline, `room to write ${what}`);
      continue;
    }
    off += n;
  }
}

/**
 * Reads a connection's 20-byte opening record exactly, and not a byte more; gives up as soon
 * as the first bytes cannot start one.
 * @throws {ProtocolError} EPROTOCOL on bytes that are not an opening record
 */
export async function readOpening(
  reactor: Reactor,
  fd: number,
  deadline: number,
): Promise<Opening> {
  const buf = new Uint8Array(OPENING_BYTES);
  const what = 'the opening record';
  for (let got = 0; got < OPENING_BYTES;) {
    got += await recvSome(reactor, fd, got === 0 ? buf : buf.subarray(got), deadline, what);
    if (!openingStartsWell(buf, got)) break;
  }
  return parseOpening(buf);
}
