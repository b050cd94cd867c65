/**
 * Frames on the control socket (AF_UNIX SOCK_SEQPACKET). The frame stream is the same as
 * everywhere in rewire (4-byte big-endian length, then one protobuf message), cut into
 * packets of at most PACKET_BYTES bytes. The fds that belong to a frame travel with the packet
 * holding the frame's first byte, at most SCM_MAX_FD (253) per packet; a receiver queues them
 * in arrival order and gives each frame the number of fds it says it carries (`attached`).
 */
import { SCM_MAX_FD } from '../../ffi/index.ts';
import { frame } from '../wire/framer.ts';

export const PACKET_BYTES = 32 * 1024;

export interface Packet {
  data: Uint8Array;
  fds: number[];
}

/** Packs frames, each with its fds, into packets. */
export function packFrames(
  frames: ReadonlyArray<{ body: Uint8Array; fds: readonly number[] }>,
): Packet[] {
  const packets: Packet[] = [];
  let chunks: Uint8Array[] = [];
  let size = 0;
  let fds: number[] = [];
  const flush = () => {
    if (size === 0) return;
    packets.push({ data: concat(chunks, size), fds });
    chunks = [];
    size = 0;
    fds = [];
  };
  for (const f of frames) {
    const bytes = frame(f.body);
    if (
      size + Math.min(bytes.length, PACKET_BYTES) > PACKET_BYTES ||
      fds.length + f.fds.length > SCM_MAX_FD
    )
      flush();
    fds.push(...f.fds);
    for (let off = 0; off < bytes.length;) {
      const n = Math.min(bytes.length - off, PACKET_BYTES - size);
      chunks.push(bytes.subarray(off, off + n));
      size += n;
      off += n;
      if (size === PACKET_BYTES) flush();
    }
  }
  flush();
  return packets;
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
