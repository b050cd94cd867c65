/**
 * Puts an endpoint's recorded characteristics back on a socket (SPEC §3.3): the socket
 * options as getsockopt reported them, and the fcntl state.
 *
 * Order matters: options that change how bind() behaves (SO_REUSEADDR, SO_REUSEPORT,
 * IPV6_V6ONLY, TCP_MAXSEG) go on before bind/connect (`applyBeforeBind`); the rest after the
 * connection exists (`applyAfterConnect`). Buffer sizes are set to half the recorded value,
 * because Linux doubles what it is given and getsockopt reports the doubled size. Read-only
 * options (SO_TYPE, SO_ERROR, ...) are skipped; options that do not apply to the new socket's
 * family (TCP options on an AF_UNIX pair) are skipped and reported.
 */
import {
  bufferSizeToSet,
  encodeInt,
  getIntOption,
  O,
  optionByNumber,
  setOwner,
  setSignal,
  setSockOptRaw,
  getStatusFlags,
  setStatusFlags,
  SO,
  SOL,
  type OptionSpec,
  OPTIONS,
  getSockOptRaw,
  getOwner,
  getSignal,
  getDescriptorFlags,
  FD_CLOEXEC,
  RecordedStatusFlags,
} from '../../ffi/index.ts';
import { RewireError } from '../errors.ts';
import type { Endpoint, FcntlState, Family, SocketOption } from '../model/types.ts';

/** What happened to the options that could not be replayed, for the endpoint's result. */
export interface StateReport {
  skipped: string[];
  failed: string[];
}

function optionName(o: SocketOption, spec: OptionSpec | undefined): string {
  return o.label ?? spec?.name ?? `level ${o.level} option ${o.name}`;
}

function applies(spec: OptionSpec | undefined, family: Family): boolean {
  if (!spec?.families) return true;
  return (spec.families as readonly string[]).includes(family);
}

function replay(fd: number, options: SocketOption[], family: Family, report: StateReport): void {
  for (const o of options) {
    const spec = optionByNumber(o.level, o.name);
    if (spec?.readOnly) continue;
    if (!applies(spec, family)) {
      report.skipped.push(`${optionName(o, spec)} (not for ${family} sockets)`);
      continue;
    }
    try {
      setSockOptRaw(fd, o.level, o.name, valueToSet(o));
    } catch (err) {
      report.failed.push(`${optionName(o, spec)}: ${(err as Error).message}`);
    }
  }
}

function valueToSet(o: SocketOption): Uint8Array {
  const isBuffer = o.level === SOL.SOCKET && (o.name === SO.SNDBUF || o.name === SO.RCVBUF);
  if (!isBuffer || o.value.length < 4) return o.value;
  const recorded = new DataView(o.value.buffer, o.value.byteOffset, 4).getInt32(0, true);
  return encodeInt(bufferSizeToSet(recorded));
}

/** Applies the options that must precede bind() or connect(). */
export function applyBeforeBind(fd: number, endpoint: Endpoint, family: Family): StateReport {
  const report: StateReport = { skipped: [], failed: [] };
  const early = endpoint.options.filter((o) => optionByNumber(o.level, o.name)?.beforeBind);
  replay(fd, early, family, report);
  return report;
}

/** Applies the remaining options once the socket is connected or listening. */
export function applyAfterConnect(
  fd: number,
  endpoint: Endpoint,
  family: Family,
  report: StateReport = { skipped: [], failed: [] },
): StateReport {
  const late = endpoint.options.filter((o) => !optionByNumber(o.level, o.name)?.beforeBind);
  replay(fd, late, family, report);
  return report;
}

/**
 * Applies the recorded fcntl state: F_SETOWN (the checkpoint pid mapped to `newPid`), F_SETSIG,
 * then O_NONBLOCK and O_ASYNC. An owner that was another process is kept as recorded; an owner
 * that was the process itself is skipped when its new pid is not known yet (`newPid` 0), and
 * the process sets it once it runs (`rewire exec` does).
 */
export function applyFcntl(
  fd: number,
  endpoint: Endpoint,
  pids: { checkpoint: number; now: number },
): StateReport {
  const report: StateReport = { skipped: [], failed: [] };
  const state = endpoint.fcntl;
  if (!state) return report;
  const owner = mapOwner(state.owner, pids);
  try {
    if (owner !== 0) setOwner(fd, owner);
    if (state.signal !== 0) setSignal(fd, state.signal);
  } catch (err) {
    report.failed.push(`owner/signal: ${(err as Error).message}`);
  }
  const keep = getStatusFlags(fd) & ~(O.NONBLOCK | O.ASYNC);
  setStatusFlags(fd, keep | (state.statusFlags & (O.NONBLOCK | O.ASYNC)));
  return report;
}

/** The F_SETOWN value for the restored socket: the process's own pid follows it. */
export function mapOwner(owner: number, pids: { checkpoint: number; now: number }): number {
  if (owner === 0) return 0;
  if (owner === pids.checkpoint) return pids.now;
  return owner;
}

/**
 * Makes room in `fd`'s send buffer for `bytes` more bytes, so that a refill can be written
 * at once and the socket handed on without waiting for the reader. Uses SO_SNDBUFFORCE
 * (CAP_NET_ADMIN) and falls back to SO_SNDBUF, which the kernel caps at wmem_max.
 */
export function growSendBuffer(fd: number, bytes: number): void {
  // Every TCP send buffer holds at least tcp_wmem's minimum, 4 KiB: no need to ask.
  if (bytes <= 4096) return;
  const current = getIntOption(fd, 'SO_SNDBUF');
  const needed = bytes * 2 + 65536;
  if (current >= needed) return;
  const value = encodeInt(Math.min(needed, 0x3fffffff));
  try {
    setSockOptRaw(fd, SOL.SOCKET, 32 /* SO_SNDBUFFORCE */, value);
  } catch {
    setSockOptRaw(fd, SOL.SOCKET, SO.SNDBUF, value);
  }
}

/** Makes a one-line summary of a report for an endpoint's result message, or undefined. */
export function describeReport(report: StateReport): string | undefined {
  const parts = [
    ...report.failed.map((f) => `failed ${f}`),
    ...report.skipped.map((s) => `skipped ${s}`),
  ];
  return parts.length > 0 ? parts.join('; ') : undefined;
}

export class SocketStateError extends RewireError {
  override name = 'SocketStateError';
}

/** Every option rewire records: the named options of SPEC §3.3 and the others it knows. */
const RECORDED = Object.values(OPTIONS).filter((o) => !o.readOnly);

/**
 * Reads the recordable state of a live socket: every option that applies to `family`, as
 * getsockopt reports it, and the fcntl state. Options the kernel refuses to report are left
 * out. Used to give a new socket the characteristics of a sibling socket, and by capture.
 */
export function measureState(
  fd: number,
  family: Family,
): { options: SocketOption[]; fcntl: FcntlState } {
  const options: SocketOption[] = [];
  for (const spec of RECORDED) {
    if (!applies(spec, family)) continue;
    try {
      const size =
        spec.kind === 'linger' ? 8 : spec.kind === 'timeval' ? 16 : spec.kind === 'string' ? 16 : 4;
      const value = getSockOptRaw(fd, spec.level, spec.optname, size);
      options.push({ level: spec.level, name: spec.optname, value, label: spec.name });
    } catch {
      // Not reported for this socket (e.g. an option of a newer kernel): nothing to replay.
    }
  }
  const fcntl: FcntlState = {
    statusFlags: getStatusFlags(fd) & RecordedStatusFlags,
    owner: getOwner(fd),
    signal: getSignal(fd),
    cloexec: (getDescriptorFlags(fd) & FD_CLOEXEC) !== 0,
  };
  return { options, fcntl };
}

/** Adds `more`'s skipped and failed options to `into`; returns `into`. */
export function mergeReports(into: StateReport, more: StateReport): StateReport {
  into.skipped.push(...more.skipped);
  into.failed.push(...more.failed);
  return into;
}

/**
 * Puts the rest of the recorded state on a connected socket the agent used non-blocking for
 * its handshake: the options that follow connect(), then the fcntl state. Without a recorded
 * fcntl state the socket is left blocking, as a new socket would be.
 */
export function finishSocketState(
  fd: number,
  endpoint: Endpoint,
  family: Family,
  pids: { checkpoint: number; now: number },
  report: StateReport = { skipped: [], failed: [] },
): StateReport {
  applyAfterConnect(fd, endpoint, family, report);
  if (!endpoint.fcntl) {
    setStatusFlags(fd, getStatusFlags(fd) & ~O.NONBLOCK);
    return report;
  }
  return mergeReports(report, applyFcntl(fd, endpoint, pids));
}

/**
 * What one side writes onto a restored connection before handing it over, so that the peer's
 * receive queue reads as at checkpoint: the bytes the peer had in its receive queue
 * (`peerDrained`), then the bytes `self` had sent that the peer had not received yet
 * (`self.unsent`, when the capture could copy its send queue).
 */
export function towardPeer(peerDrained: Uint8Array, self: Endpoint): Uint8Array {
  const unsent = self.unsent;
  if (!unsent || unsent.length === 0) return peerDrained;
  const out = new Uint8Array(peerDrained.length + unsent.length);
  out.set(peerDrained);
  out.set(unsent, peerDrained.length);
  return out;
}
