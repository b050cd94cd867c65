/**
 * Socket addresses: encoding to and decoding from struct sockaddr_in, sockaddr_in6 and
 * sockaddr_un (pathname, abstract and unnamed).
 */
import { isIPv4, isIPv6 } from 'node:net';

import { Sizes } from './arch.ts';
import { AF } from './constants.ts';
import { FfiArgumentError } from './errors.ts';

export interface InetAddress {
  family: 'inet';
  address: string;
  port: number;
}

export interface Inet6Address {
  family: 'inet6';
  address: string;
  port: number;
  flowinfo?: number;
  scopeId?: number;
}

/**
 * An AF_UNIX address: `path` for a filesystem name, `abstract` for a name in the abstract
 * namespace (without its leading NUL), neither for an unnamed socket.
 */
export interface UnixAddress {
  family: 'unix';
  path?: string;
  abstract?: string;
}

export type SockAddr = InetAddress | Inet6Address | UnixAddress;

const UN_PATH_OFFSET = 2;

/** Encodes an address as the kernel's struct; returns the bytes and the length to pass. */
export function encodeSockAddr(addr: SockAddr): { buf: Uint8Array; len: number } {
  switch (addr.family) {
    case 'inet':
      return { buf: encodeInet(addr), len: Sizes.sockaddrIn };
    case 'inet6':
      return { buf: encodeInet6(addr), len: Sizes.sockaddrIn6 };
    case 'unix':
      return encodeUnix(addr);
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new FfiArgumentError(`Cannot encode address: port '${port}' is not in 0..65535`);
  }
}

function encodeInet(addr: InetAddress): Uint8Array {
  checkPort(addr.port);
  // Byte by byte: a DataView over a fresh small array costs more than the call it feeds.
  const buf = new Uint8Array(Sizes.sockaddrIn);
  buf[0] = AF.INET;
  buf[2] = addr.port >> 8;
  buf[3] = addr.port & 0xff;
  buf.set(parseIPv4Cached(addr.address), 4);
  return buf;
}

let lastIPv4: { text: string; bytes: Uint8Array } | undefined;

/** parseIPv4 for the common case of the same address many times over (a peer agent). */
function parseIPv4Cached(text: string): Uint8Array {
  if (lastIPv4?.text !== text) lastIPv4 = { text, bytes: parseIPv4(text) };
  return lastIPv4.bytes;
}

function encodeInet6(addr: Inet6Address): Uint8Array {
  checkPort(addr.port);
  const buf = new Uint8Array(Sizes.sockaddrIn6);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF.INET6, true);
  view.setUint16(2, addr.port, false);
  view.setUint32(4, addr.flowinfo ?? 0, false);
  buf.set(parseIPv6(addr.address), 8);
  view.setUint32(24, addr.scopeId ?? 0, true);
  return buf;
}

function encodeUnix(addr: UnixAddress): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(Sizes.sockaddrUn);
  new DataView(buf.buffer).setUint16(0, AF.UNIX, true);
  if (addr.path !== undefined && addr.abstract !== undefined) {
    throw new FfiArgumentError('Cannot encode unix address: both path and abstract are set');
  }
  if (addr.abstract !== undefined) {
    const name = new TextEncoder().encode(addr.abstract);
    checkUnixLength(name.length + 1, addr.abstract);
    buf.set(name, UN_PATH_OFFSET + 1);
    return { buf, len: UN_PATH_OFFSET + 1 + name.length };
  }
  if (addr.path !== undefined) {
    const name = new TextEncoder().encode(addr.path);
    if (name.length === 0) {
      // An empty path would encode as a leading NUL: a name in the abstract namespace.
      throw new FfiArgumentError('Cannot encode unix address: path is empty');
    }
    checkUnixLength(name.length + 1, addr.path);
    if (name.includes(0)) {
      throw new FfiArgumentError(`Cannot encode unix address: path '${addr.path}' contains NUL`);
    }
    buf.set(name, UN_PATH_OFFSET);
    return { buf, len: UN_PATH_OFFSET + name.length + 1 };
  }
  return { buf, len: UN_PATH_OFFSET };
}

function checkUnixLength(bytes: number, name: string): void {
  if (bytes > Sizes.sunPath) {
    throw new FfiArgumentError(
      `Cannot encode unix address: '${name}' is ${bytes} bytes, more than ${Sizes.sunPath}`,
    );
  }
}

/** Decodes `len` bytes of a struct sockaddr as returned by getsockname/getpeername/accept. */
export function decodeSockAddr(buf: Uint8Array, len: number): SockAddr {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const family = len >= 2 ? view.getUint16(0, true) : AF.UNIX;
  if (family === AF.INET) {
    return { family: 'inet', address: formatIPv4(buf.subarray(4, 8)), port: view.getUint16(2) };
  }
  if (family === AF.INET6) {
    const address = formatIPv6(buf.subarray(8, 24));
    const out: Inet6Address = { family: 'inet6', address, port: view.getUint16(2) };
    const flowinfo = view.getUint32(4, false);
    const scopeId = view.getUint32(24, true);
    if (flowinfo !== 0) out.flowinfo = flowinfo;
    if (scopeId !== 0) out.scopeId = scopeId;
    return out;
  }
  if (family === AF.UNIX) return decodeUnix(buf, len);
  throw new FfiArgumentError(`Cannot decode address: family '${family}' is not supported`);
}

function decodeUnix(buf: Uint8Array, len: number): UnixAddress {
  if (len <= UN_PATH_OFFSET) return { family: 'unix' };
  const name = buf.subarray(UN_PATH_OFFSET, len);
  const decoder = new TextDecoder();
  if (name[0] === 0) return { family: 'unix', abstract: decoder.decode(name.subarray(1)) };
  const end = name.indexOf(0);
  return { family: 'unix', path: decoder.decode(end < 0 ? name : name.subarray(0, end)) };
}

/** Parses a dotted-quad IPv4 address into 4 bytes; throws on anything else. */
export function parseIPv4(text: string): Uint8Array {
  if (!isIPv4(text)) throw new FfiArgumentError(`Cannot parse IPv4 address: '${text}'`);
  return Uint8Array.from(text.split('.').map(Number));
}

export function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4)).join('.');
}

/**
 * Parses an IPv6 address (with `::` and an embedded IPv4 tail) into 16 bytes. A zone
 * (`fe80::1%eth0`) is refused rather than dropped: the interface goes in `scopeId`.
 */
export function parseIPv6(text: string): Uint8Array {
  if (text.includes('%')) {
    throw new FfiArgumentError(
      `Cannot parse IPv6 address: '${text}' has a zone; give the interface index as scopeId`,
    );
  }
  if (!isIPv6(text)) throw new FfiArgumentError(`Cannot parse IPv6 address: '${text}'`);
  const out = new Uint8Array(16);
  const [head = '', tail] = text.split('::');
  const headGroups = splitGroups(head);
  const tailGroups = tail === undefined ? [] : splitGroups(tail);
  const words = [...headGroups];
  const fill = 8 - headGroups.length - tailGroups.length;
  for (let i = 0; i < fill; i++) words.push(0);
  words.push(...tailGroups);
  words.forEach((word, i) => {
    out[i * 2] = word >> 8;
    out[i * 2 + 1] = word & 0xff;
  });
  return out;
}

function splitGroups(part: string): number[] {
  if (part === '') return [];
  const groups: number[] = [];
  for (const group of part.split(':')) {
    if (group.includes('.')) {
      const v4 = parseIPv4(group);
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else {
      groups.push(parseInt(group, 16));
    }
  }
  return groups;
}

/** Formats 16 bytes as an IPv6 address in the RFC 5952 canonical form. */
export function formatIPv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);
  const mapped = words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;
  if (mapped) return `::ffff:${formatIPv4(bytes.subarray(12, 16))}`;
  const [start, length] = longestZeroRun(words);
  if (length < 2) return words.map((w) => w.toString(16)).join(':');
  const left = words
    .slice(0, start)
    .map((w) => w.toString(16))
    .join(':');
  const right = words
    .slice(start + length)
    .map((w) => w.toString(16))
    .join(':');
  return `${left}::${right}`;
}

function longestZeroRun(words: number[]): [number, number] {
  let best: [number, number] = [0, 0];
  let runStart = -1;
  for (let i = 0; i <= words.length; i++) {
    if (i < words.length && words[i] === 0) {
      if (runStart < 0) runStart = i;
      continue;
    }
    if (runStart >= 0 && i - runStart > best[1]) best = [runStart, i - runStart];
    runStart = -1;
  }
  return best;
}

/** A short text form for logs and tables: `10.0.0.1:7780`, `[::1]:7780`, `@name`, `/path`. */
export function formatSockAddr(addr: SockAddr): string {
  if (addr.family === 'inet') return `${addr.address}:${addr.port}`;
  if (addr.family === 'inet6') return `[${addr.address}]:${addr.port}`;
  if (addr.abstract !== undefined) return `@${addr.abstract}`;
  return addr.path ?? '(unnamed)';
}
