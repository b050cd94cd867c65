/**
 * Exact reads and whole writes on a non-blocking fd, through the reactor, each bounded by a
 * deadline. `readFrame` reads one frame and not a byte more.
 */
import { recv, send } from '../../ffi/index.ts';
import { ProtocolError } from '../errors.ts';
import type { Reactor } from '../reactor/reactor.ts';
import { FrameReader } from './framer.ts';

/** The peer closed the connection before the expected bytes arrived. */
export class PeerClosedError extends ProtocolError {
  constructor(what: string) {
    super(`Connection closed by the peer while reading ${what}`, 'EPEER_CLOSED');
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
  const reader = new FrameReader(maxBytes);
  let buf = new Uint8Array(4096);
  for (;;) {
    const want = reader.wanted();
    if (buf.length < want) buf = new Uint8Array(Math.min(want, 1 << 20));
    const n = recv(fd, buf.subarray(0, Math.min(want, buf.length)));
    if (n === 0) throw new PeerClosedError(what);
    if (n < 0) {
      await reactor.readable(fd, deadline, what);
      continue;
    }
    const frames = reader.push(buf.subarray(0, n));
    if (frames.length > 0) return frames[0]!;
  }
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
    const n = send(fd, data.subarray(off));
    if (n < 0) {
      await reactor.writable(fd, deadline, `room to write ${what}`);
      continue;
    }
    off += n;
  }
}
