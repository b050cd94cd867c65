/**
 * The frame format on every rewire stream: a 4-byte big-endian length, then that many bytes
 * (one protobuf message).
 *
 * `FrameReader` is incremental: feed it what arrived, take whole frames out. A frame longer
 * than its limit is refused as soon as its length is in, before anything is allocated for it.
 */
import { ProtocolError } from '../errors.ts';

export const FRAME_HEADER = 4;

/** Prefixes `body` with its length. */
export function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + body.length);
  writeLength(out, body.length);
  out.set(body, FRAME_HEADER);
  return out;
}

/** Writes a frame length into the first 4 bytes of `out` (big-endian). */
export function writeLength(out: Uint8Array, length: number): void {
  out[0] = length >>> 24;
  out[1] = (length >>> 16) & 0xff;
  out[2] = (length >>> 8) & 0xff;
  out[3] = length & 0xff;
}

/** The length in a frame header; throws EFRAME_TOO_LARGE past `maxBytes`. */
export function checkedLength(header: Uint8Array, maxBytes: number, what: string): number {
  const length = readLength(header);
  if (length > maxBytes) {
    throw new ProtocolError(
      `Cannot read ${what}: length ${length} is more than the limit of ${maxBytes} bytes`,
      'EFRAME_TOO_LARGE',
    );
  }
  return length;
}

/** Reads a frame length from the first 4 bytes of `bytes` (big-endian). */
export function readLength(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

export class FrameReader {
  /** The longest frame taken; a change applies from the next frame on. */
  maxBytes: number;
  #header = new Uint8Array(FRAME_HEADER);
  #headerFill = 0;
  #body: Uint8Array | null = null;
  #bodyFill = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Takes bytes; returns the frame bodies completed by them. */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let off = 0;
    while (off < chunk.length) {
      off += this.#take(chunk.subarray(off));
      const done = this.#complete();
      if (done) frames.push(done);
    }
    const done = this.#complete();
    if (done) frames.push(done);
    return frames;
  }

  #take(bytes: Uint8Array): number {
    if (this.#body === null) {
      const n = Math.min(bytes.length, FRAME_HEADER - this.#headerFill);
      this.#header.set(bytes.subarray(0, n), this.#headerFill);
      this.#headerFill += n;
      if (this.#headerFill === FRAME_HEADER) this.#startBody();
      return n;
    }
    const n = Math.min(bytes.length, this.#body.length - this.#bodyFill);
    this.#body.set(bytes.subarray(0, n), this.#bodyFill);
    this.#bodyFill += n;
    return n;
  }

  #startBody(): void {
    const length = checkedLength(this.#header, this.maxBytes, 'frame');
    this.#body = new Uint8Array(length);
    this.#bodyFill = 0;
  }

  #complete(): Uint8Array | null {
    if (this.#body === null || this.#bodyFill < this.#body.length) return null;
    const body = this.#body;
    this.#body = null;
    this.#headerFill = 0;
    return body;
  }
}
