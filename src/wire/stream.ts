/**
 * Exact reads and whole writes on a non-blocking fd, through the reactor, each bounded by a
 * deadline. `readFrame` reads one frame and not a byte more: the 4-byte length first, then
 * exactly that many bytes.
 */
import { recv, send } from '../../ffi/index.ts';
import { ProtocolError } from '../errors.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { FRAME_HEADER, readLength } from './framer.ts';

/** The peer closed the connection before the expected bytes arrived. */
export class PeerClosedError extends ProtocolError {
  constructor(what: string) {
    super(`Connection closed by the peer while reading ${what}`, 'EPEER_CLOSED');
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
  let off = 0;
  while (off < buf.length) {
    const n = recv(fd, off === 0 ? buf : buf.subarray(off));
    if (n === 0) throw new PeerClosedError(what);
    if (n < 0) {
      await reactor.readable(fd, deadline, what);
      continue;
    }
    off += n;
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
  const length = readLength(header);
  if (length > maxBytes) {
    throw new ProtocolError(
      `Cannot read ${what}: length ${length} is more than the limit of ${maxBytes} bytes`,
      'EFRAME_TOO_LARGE',
    );
  }
  const body = new Uint8Array(length);
  if (length > 0) await readInto(reactor, fd, body, deadline, what);
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
  // Handshake frames are a few hundred bytes; a larger one continues in finishLarge.
  const buf = new Uint8Array(1024);
  let got = 0;
  for (;;) {
    const n = recv(fd, got === 0 ? buf : buf.subarray(got));
    if (n === 0) throw new PeerClosedError(what);
    if (n < 0) {
      await reactor.readable(fd, deadline, what);
      continue;
    }
    got += n;
    if (got < FRAME_HEADER) continue;
    const length = readLength(buf);
    if (length > maxBytes) {
      throw new ProtocolError(
        `Cannot read ${what}: length ${length} is more than the limit of ${maxBytes} bytes`,
        'EFRAME_TOO_LARGE',
      );
    }
    if (FRAME_HEADER + length > buf.length)
      return finishLarge(reactor, fd, buf.subarray(0, got), length, deadline, what);
    if (got > FRAME_HEADER + length)
      throw new ProtocolError(`Peer sent more than ${what} before our answer`);
    if (got === FRAME_HEADER + length) return buf.subarray(FRAME_HEADER, got);
  }
}

async function finishLarge(
  reactor: Reactor,
  fd: number,
  start: Uint8Array,
  length: number,
  deadline: number,
  what: string,
): Promise<Uint8Array> {
  const body = new Uint8Array(length);
  const have = start.subarray(FRAME_HEADER);
  if (have.length > length)
    throw new ProtocolError(`Peer sent more than ${what} before our answer`);
  body.set(have);
  if (have.length < length) await readInto(reactor, fd, body.subarray(have.length), deadline, what);
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
