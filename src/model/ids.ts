/**
 * Keys and comparisons for process and endpoint ids, and DMTCP's host-id hash.
 *
 * A process key is `hostId:pid:birthTime:generation` in decimal, an endpoint key is the
 * process key, `#` and the connection number: `8734519200:4121:99120033:0#3`. Keys are
 * stable (the same id always gives the same key), compact, and parse back exactly.
 */
import { IdError } from './errors.ts';
import type { EndpointId, ProcessId } from './types.ts';

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffff;
const KEY = /^(\d{1,20}):(-?\d{1,10}):(\d{1,20}):(\d{1,10})(?:#(\d{1,10}))?$/;

/** The map key of a process: `hostId:pid:birthTime:generation`. */
export function processKey(p: ProcessId): string {
  return `${p.hostId}:${p.pid}:${p.birthTime}:${p.generation}`;
}

/** The map key of an endpoint: the process key, `#`, and the connection number. */
export function endpointKey(e: EndpointId): string {
  return `${processKey(e.process)}#${e.conn}`;
}

/** A process id as logs show it (the same text as its key). */
export function formatProcessId(id: ProcessId): string {
  return processKey(id);
}

/** An endpoint id as logs show it (the same text as its key). */
export function formatEndpointId(id: EndpointId): string {
  return endpointKey(id);
}

/**
 * The process id of a key made by `processKey`.
 * @throws {IdError} when `text` is not a process key or a number is out of range
 */
export function parseProcessKey(text: string): ProcessId {
  const m = KEY.exec(text);
  if (m === null || m[5] !== undefined) throw badKey('process', text);
  return toProcessId(m, text, 'process');
}

/**
 * The endpoint id of a key made by `endpointKey`.
 * @throws {IdError} when `text` is not an endpoint key or a number is out of range
 */
export function parseEndpointKey(text: string): EndpointId {
  const m = KEY.exec(text);
  if (m === null || m[5] === undefined) throw badKey('endpoint', text);

  const conn = Number(m[5]);
  if (conn > U32_MAX) throw badKey('endpoint', text, `connection number ${m[5]} is too large`);
  return { process: toProcessId(m, text, 'endpoint'), conn };
}

function toProcessId(m: RegExpExecArray, text: string, what: string): ProcessId {
  const hostId = BigInt(m[1]!);
  const pid = Number(m[2]);
  const birthTime = BigInt(m[3]!);
  const generation = Number(m[4]);
  if (hostId > U64_MAX) throw badKey(what, text, `host id ${m[1]} is above 2^64-1`);
  if (pid !== (pid | 0)) throw badKey(what, text, `pid ${m[2]} is not a 32-bit integer`);
  if (birthTime > U64_MAX) throw badKey(what, text, `birth time ${m[3]} is above 2^64-1`);
  if (generation > U32_MAX) throw badKey(what, text, `generation ${m[4]} is too large`);
  return { hostId, pid, birthTime, generation };
}

function badKey(what: string, text: string, detail?: string): IdError {
  const shape =
    what === 'process' ? 'hostId:pid:birthTime:generation' : 'hostId:pid:birthTime:generation#conn';
  const why = detail ?? `expected ${shape} in decimal`;
  return new IdError(`Cannot parse ${what} id '${text}': ${why}`);
}

/** Whether two process ids are the same process (all four fields, generation included). */
export function sameProcess(a: ProcessId, b: ProcessId): boolean {
  return (
    a.hostId === b.hostId &&
    a.pid === b.pid &&
    a.birthTime === b.birthTime &&
    a.generation === b.generation
  );
}

/** Whether two endpoint ids are the same endpoint. */
export function sameEndpoint(a: EndpointId, b: EndpointId): boolean {
  return a.conn === b.conn && sameProcess(a.process, b.process);
}

const SIGN = 1n << 63n;

/**
 * DMTCP's host id of a host name (SPEC §2): `h = c + 331·h` over the name's bytes in a signed
 * 64-bit `long` that wraps around, then the absolute value. The result is in 0..2^63.
 *
 * The name is hashed as its UTF-8 bytes taken unsigned, as DMTCP does where `char` is unsigned
 * (aarch64). On x86_64 DMTCP's `char` is signed, so a name with a byte above 0x7f hashes
 * differently there; host names are ASCII (RFC 1123), for which both agree.
 */
export function dmtcpHostId(name: string): bigint {
  let h = 0n;
  for (const c of new TextEncoder().encode(name)) h = (BigInt(c) + 331n * h) & U64_MAX;

  const signed = h >= SIGN ? h - (1n << 64n) : h;
  return signed < 0n ? -signed : signed;
}
