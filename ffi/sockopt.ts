/**
 * Socket options: raw and typed getsockopt/setsockopt, the named options rewire records and
 * replays (SPEC §3.3), and the queue-length ioctls.
 *
 * Note for replay: Linux doubles SO_SNDBUF and SO_RCVBUF on set (to leave room for
 * bookkeeping) and getsockopt reports the doubled value. A value read from one socket is
 * restored on another by setting half of it; `bufferSizeToSet` does that.
 */
import { check } from './call.ts';
import { IPV6, IP, SIOC, SO, SOL, TCP, TCP_STATES } from './constants.ts';
import { FfiArgumentError } from './errors.ts';
import { sym } from './libc.ts';
import { Sizes } from './arch.ts';

export type OptionKind = 'int' | 'linger' | 'timeval' | 'string';

/** One named socket option: where it lives and how its value is laid out. */
export interface OptionSpec {
  name: string;
  level: number;
  levelName: 'SOL_SOCKET' | 'IPPROTO_TCP' | 'IPPROTO_IP' | 'IPPROTO_IPV6';
  optname: number;
  kind: OptionKind;
  /** Set before bind(): the option changes how bind() or the address behaves. */
  beforeBind?: boolean;
  /** Reported by the kernel, never set. */
  readOnly?: boolean;
  /** Families the option applies to; all when absent. */
  families?: readonly ('inet' | 'inet6' | 'unix')[];
}

const tcpFamilies = ['inet', 'inet6'] as const;

function opt(
  name: string,
  levelName: OptionSpec['levelName'],
  optname: number,
  kind: OptionKind,
  extra: Partial<OptionSpec> = {},
): OptionSpec {
  const level = {
    SOL_SOCKET: SOL.SOCKET,
    IPPROTO_TCP: SOL.TCP,
    IPPROTO_IP: SOL.IP,
    IPPROTO_IPV6: SOL.IPV6,
  }[levelName];
  return { name, level, levelName, optname, kind, ...extra };
}

/** Every option rewire knows by name, keyed by its C name. */
export const OPTIONS = {
  SO_REUSEADDR: opt('SO_REUSEADDR', 'SOL_SOCKET', SO.REUSEADDR, 'int', { beforeBind: true }),
  // SO_REUSEPORT never had an effect on AF_UNIX sockets, and recent kernels refuse it there.
  SO_REUSEPORT: opt('SO_REUSEPORT', 'SOL_SOCKET', SO.REUSEPORT, 'int', {
    beforeBind: true,
    families: tcpFamilies,
  }),
  SO_KEEPALIVE: opt('SO_KEEPALIVE', 'SOL_SOCKET', SO.KEEPALIVE, 'int'),
  SO_SNDBUF: opt('SO_SNDBUF', 'SOL_SOCKET', SO.SNDBUF, 'int'),
  SO_RCVBUF: opt('SO_RCVBUF', 'SOL_SOCKET', SO.RCVBUF, 'int'),
  SO_LINGER: opt('SO_LINGER', 'SOL_SOCKET', SO.LINGER, 'linger'),
  SO_OOBINLINE: opt('SO_OOBINLINE', 'SOL_SOCKET', SO.OOBINLINE, 'int'),
  SO_PRIORITY: opt('SO_PRIORITY', 'SOL_SOCKET', SO.PRIORITY, 'int'),
  SO_RCVLOWAT: opt('SO_RCVLOWAT', 'SOL_SOCKET', SO.RCVLOWAT, 'int'),
  SO_RCVTIMEO: opt('SO_RCVTIMEO', 'SOL_SOCKET', SO.RCVTIMEO, 'timeval'),
  SO_SNDTIMEO: opt('SO_SNDTIMEO', 'SOL_SOCKET', SO.SNDTIMEO, 'timeval'),
  SO_MARK: opt('SO_MARK', 'SOL_SOCKET', SO.MARK, 'int'),
  SO_TYPE: opt('SO_TYPE', 'SOL_SOCKET', SO.TYPE, 'int', { readOnly: true }),
  SO_DOMAIN: opt('SO_DOMAIN', 'SOL_SOCKET', SO.DOMAIN, 'int', { readOnly: true }),
  SO_PROTOCOL: opt('SO_PROTOCOL', 'SOL_SOCKET', SO.PROTOCOL, 'int', { readOnly: true }),
  SO_ACCEPTCONN: opt('SO_ACCEPTCONN', 'SOL_SOCKET', SO.ACCEPTCONN, 'int', { readOnly: true }),
  SO_ERROR: opt('SO_ERROR', 'SOL_SOCKET', SO.ERROR, 'int', { readOnly: true }),
  TCP_NODELAY: opt('TCP_NODELAY', 'IPPROTO_TCP', TCP.NODELAY, 'int', { families: tcpFamilies }),
  TCP_KEEPIDLE: opt('TCP_KEEPIDLE', 'IPPROTO_TCP', TCP.KEEPIDLE, 'int', { families: tcpFamilies }),
  TCP_KEEPINTVL: opt('TCP_KEEPINTVL', 'IPPROTO_TCP', TCP.KEEPINTVL, 'int', {
    families: tcpFamilies,
  }),
  TCP_KEEPCNT: opt('TCP_KEEPCNT', 'IPPROTO_TCP', TCP.KEEPCNT, 'int', { families: tcpFamilies }),
  TCP_USER_TIMEOUT: opt('TCP_USER_TIMEOUT', 'IPPROTO_TCP', TCP.USER_TIMEOUT, 'int', {
    families: tcpFamilies,
  }),
  TCP_MAXSEG: opt('TCP_MAXSEG', 'IPPROTO_TCP', TCP.MAXSEG, 'int', {
    families: tcpFamilies,
    beforeBind: true,
  }),
  TCP_CORK: opt('TCP_CORK', 'IPPROTO_TCP', TCP.CORK, 'int', { families: tcpFamilies }),
  TCP_QUICKACK: opt('TCP_QUICKACK', 'IPPROTO_TCP', TCP.QUICKACK, 'int', { families: tcpFamilies }),
  TCP_DEFER_ACCEPT: opt('TCP_DEFER_ACCEPT', 'IPPROTO_TCP', TCP.DEFER_ACCEPT, 'int', {
    families: tcpFamilies,
  }),
  TCP_NOTSENT_LOWAT: opt('TCP_NOTSENT_LOWAT', 'IPPROTO_TCP', TCP.NOTSENT_LOWAT, 'int', {
    families: tcpFamilies,
  }),
  TCP_CONGESTION: opt('TCP_CONGESTION', 'IPPROTO_TCP', TCP.CONGESTION, 'string', {
    families: tcpFamilies,
  }),
  IP_TOS: opt('IP_TOS', 'IPPROTO_IP', IP.TOS, 'int', { families: ['inet'] }),
  IP_TTL: opt('IP_TTL', 'IPPROTO_IP', IP.TTL, 'int', { families: ['inet'] }),
  IPV6_V6ONLY: opt('IPV6_V6ONLY', 'IPPROTO_IPV6', IPV6.V6ONLY, 'int', {
    families: ['inet6'],
    beforeBind: true,
  }),
  IPV6_TCLASS: opt('IPV6_TCLASS', 'IPPROTO_IPV6', IPV6.TCLASS, 'int', { families: ['inet6'] }),
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** The option spec of a C name such as `SO_SNDBUF`; throws for an unknown name. */
export function optionSpec(name: string): OptionSpec {
  const spec = (OPTIONS as Record<string, OptionSpec>)[name];
  if (spec === undefined) throw new FfiArgumentError(`Unknown socket option: '${name}'`);
  return spec;
}

const BY_NUMBER = new Map<number, OptionSpec>(
  Object.values(OPTIONS).map((o) => [o.level * 0x10000 + o.optname, o]),
);

/** The spec of a (level, optname) pair, or undefined when rewire has no name for it. */
export function optionByNumber(level: number, optname: number): OptionSpec | undefined {
  return BY_NUMBER.get(level * 0x10000 + optname);
}

function label(level: number, optname: number): string {
  const spec = optionByNumber(level, optname);
  return spec ? `${spec.levelName}, ${spec.name}` : `level ${level}, option ${optname}`;
}

/** getsockopt(2) returning the raw value bytes (at most `size` of them). */
export function getSockOptRaw(fd: number, level: number, optname: number, size = 64): Uint8Array {
  const buf = new Uint8Array(size);
  const len = new Uint32Array([size]);
  const ret = sym.getsockopt(fd, level, optname, buf, len);
  // The error's wording is made only when there is an error (this runs per restored socket).
  if (ret < 0) check(ret, { syscall: 'getsockopt', fd, detail: label(level, optname) });
  return buf.slice(0, len[0]);
}

/** setsockopt(2) with raw value bytes. */
export function setSockOptRaw(fd: number, level: number, optname: number, value: Uint8Array): void {
  const ret = sym.setsockopt(fd, level, optname, value, value.length);
  if (ret < 0) check(ret, { syscall: 'setsockopt', fd, detail: label(level, optname) });
}

/** Reads an int option by name. */
export function getIntOption(fd: number, name: OptionName): number {
  const spec = expectKind(name, 'int');
  const raw = getSockOptRaw(fd, spec.level, spec.optname, 4);
  return raw[0]! | (raw[1]! << 8) | (raw[2]! << 16) | (raw[3]! << 24);
}

/** Sets an int option by name. */
export function setIntOption(fd: number, name: OptionName, value: number): void {
  const spec = expectKind(name, 'int');
  setSockOptRaw(fd, spec.level, spec.optname, encodeInt(value));
}

export function encodeInt(value: number): Uint8Array {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setInt32(0, value, true);
  return buf;
}

function expectKind(name: OptionName, kind: OptionKind): OptionSpec {
  const spec = optionSpec(name);
  if (spec.kind !== kind) {
    throw new FfiArgumentError(`Cannot use option '${name}' as ${kind}: it is ${spec.kind}`);
  }
  return spec;
}

/** struct linger. */
export interface Linger {
  onoff: boolean;
  seconds: number;
}

export function getLinger(fd: number): Linger {
  const raw = getSockOptRaw(fd, SOL.SOCKET, SO.LINGER, Sizes.linger);
  const view = new DataView(raw.buffer);
  return { onoff: view.getInt32(0, true) !== 0, seconds: view.getInt32(4, true) };
}

export function setLinger(fd: number, linger: Linger): void {
  const buf = new Uint8Array(Sizes.linger);
  const view = new DataView(buf.buffer);
  view.setInt32(0, linger.onoff ? 1 : 0, true);
  view.setInt32(4, linger.seconds, true);
  setSockOptRaw(fd, SOL.SOCKET, SO.LINGER, buf);
}

/** Reads a struct timeval option (SO_RCVTIMEO, SO_SNDTIMEO) in microseconds. */
export function getTimevalOption(fd: number, name: 'SO_RCVTIMEO' | 'SO_SNDTIMEO'): number {
  const spec = expectKind(name, 'timeval');
  const raw = getSockOptRaw(fd, spec.level, spec.optname, Sizes.timeval);
  const view = new DataView(raw.buffer);
  return Number(view.getBigInt64(0, true)) * 1_000_000 + Number(view.getBigInt64(8, true));
}

/** Sets a struct timeval option from microseconds. */
export function setTimevalOption(
  fd: number,
  name: 'SO_RCVTIMEO' | 'SO_SNDTIMEO',
  micros: number,
): void {
  const spec = expectKind(name, 'timeval');
  const buf = new Uint8Array(Sizes.timeval);
  const view = new DataView(buf.buffer);
  view.setBigInt64(0, BigInt(Math.floor(micros / 1_000_000)), true);
  view.setBigInt64(8, BigInt(micros % 1_000_000), true);
  setSockOptRaw(fd, spec.level, spec.optname, buf);
}

/** Reads a string option (TCP_CONGESTION). */
export function getStringOption(fd: number, name: 'TCP_CONGESTION'): string {
  const spec = expectKind(name, 'string');
  const raw = getSockOptRaw(fd, spec.level, spec.optname, 16);
  const end = raw.indexOf(0);
  return new TextDecoder().decode(end < 0 ? raw : raw.subarray(0, end));
}

export function setStringOption(fd: number, name: 'TCP_CONGESTION', value: string): void {
  const spec = expectKind(name, 'string');
  setSockOptRaw(fd, spec.level, spec.optname, new TextEncoder().encode(value));
}

/** TCP_NODELAY on or off. */
export function setNoDelay(fd: number, on: boolean): void {
  setIntOption(fd, 'TCP_NODELAY', on ? 1 : 0);
}

/** The pending error of a socket (SO_ERROR), e.g. after a non-blocking connect; 0 if none. */
export function socketError(fd: number): number {
  return getIntOption(fd, 'SO_ERROR');
}

/** What kind of socket an fd is: SO_DOMAIN, SO_TYPE, SO_PROTOCOL and SO_ACCEPTCONN. */
export interface SocketKind {
  domain: number;
  type: number;
  protocol: number;
  listening: boolean;
}

export function socketKind(fd: number): SocketKind {
  return {
    domain: getIntOption(fd, 'SO_DOMAIN'),
    type: getIntOption(fd, 'SO_TYPE'),
    protocol: getIntOption(fd, 'SO_PROTOCOL'),
    listening: getIntOption(fd, 'SO_ACCEPTCONN') !== 0,
  };
}

/** Bytes in the receive queue (SIOCINQ) and in the send queue not yet acknowledged (SIOCOUTQ). */
export function queueLengths(fd: number): { inq: number; outq: number } {
  const value = new Int32Array(1);
  check(sym.ioctl(fd, SIOC.INQ, value), { syscall: 'ioctl', fd, detail: 'SIOCINQ' });
  const inq = value[0]!;
  check(sym.ioctl(fd, SIOC.OUTQ, value), { syscall: 'ioctl', fd, detail: 'SIOCOUTQ' });
  return { inq, outq: value[0]! };
}

/** The TCP state of a TCP socket, from struct tcp_info's first byte (tcpi_state). */
export function tcpState(fd: number): (typeof TCP_STATES)[number] {
  const raw = getSockOptRaw(fd, SOL.TCP, TCP.INFO, 8);
  return TCP_STATES[raw[0] ?? 0] ?? 'UNKNOWN';
}

/** The value to pass to setsockopt so that getsockopt later reports `recorded`. */
export function bufferSizeToSet(recorded: number): number {
  return Math.max(1, Math.floor(recorded / 2));
}
