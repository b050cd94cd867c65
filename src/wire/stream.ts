/**
 * Exact reads and whole writes on a non-blocking fd, through the reactor, each bounded by a
 * deadline. `readFrame` reads one frame and not a byte more: the 4-byte length first, then
 * exactly that many bytes.
 */
import { recv, send } from '../../ffi/index.ts';
import { ProtocolError } from '../errors.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { checkedLength, FRAME_HEADER } from './framer.ts';

/** The peer closed the connection before the expected bytes arrived. */
export class PeerClosedError extends ProtocolError {
  constructor(what: string) {
    super(`Connection closed by the peer while reading ${what}`, 'EPEER_CLOSED');
  }
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

/** Fills `buf` completely from `fd`. */
async function readInto(
  reactor: Reactor,
  fd: number,
  buf: Uint8Array,
  deadline: number,
  what: string,
): Promise<void> {
  for (let off = 0; off < buf.length;) {
    off += await recvSome(reactor, fd, off === 0 ? buf : buf.subarray(off), deadline, what);
  }
}

/** Reads one whole frame body from `fd`, consuming nothing beyond it. */
export async function readFrame(
  reactor: Reactor,
  fd: number,
  deadline: number,
  maxBytes: number,
  what = 'a frame',
): Promise<Uint8Array> {
  const header = new Uint8Array(FRAME_HEADER);
  await readInto(reactor, fd, header, deadline, what);
  const body = new Uint8Array(checkedLength(header, maxBytes, what));
  if (body.length > 0) await readInto(reactor, fd, body, deadline, what);
  return body;
}

/**
 * Reads one frame that the peer sent and then waits for an answer to, so nothing can follow
 * it yet: one recv usually takes the whole frame. Bytes beyond the frame mean the peer broke
 * the protocol.
 */
export async function readLoneFrame(
  reactor: Reactor,
  fd: number,
  deadline: number,
  maxBytes: number,
  what = 'a frame',
): Promise<Uint8Array> {
  // Handshake frames are a few hundred bytes; a larger one is finished into its own buffer.
  const buf = new Uint8Array(1024);
  let got = 0;
  while (got < FRAME_HEADER) got += await recvSome(reactor, fd, buf.subarray(got), deadline, what);
  const length = checkedLength(buf, maxBytes, what);
  const body =
    FRAME_HEADER + length > buf.length
      ? new Uint8Array(length)
      : buf.subarray(FRAME_HEADER, FRAME_HEADER + length);
  if (got - FRAME_HEADER > length)
    throw new ProtocolError(`Peer sent more than ${what} before our answer`);
  if (body.buffer !== buf.buffer) body.set(buf.subarray(FRAME_HEADER, got));
  await readInto(reactor, fd, body.subarray(got - FRAME_HEADER), deadline, what);
  return body;
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
