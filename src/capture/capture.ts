/**
 * Capture (SPEC §3.10): reads a running process's sockets into a manifest without injecting
 * any code. The whole sequence, for process P:
 *
 * 1. open P by pidfd and check that the caller may copy its fds (`CaptureTarget`);
 * 2. with `drain`, freeze P (SIGSTOP through the pidfd, `freeze.ts`);
 * 3. read /proc/P/fd: sockets (`socket:[inode]`) are grouped by inode, so a socket at several
 *    fd numbers (dup'd) becomes one endpoint with several fds; every other fd is listed as a
 *    file;
 * 4. copy one fd of each socket with pidfd_getfd and read it (`describe.ts`): kind, addresses,
 *    every option, fcntl state, TCP state, queue lengths, backlog; close-on-exec is per fd and
 *    read from /proc/P/fdinfo instead;
 * 5. with `drain`, copy the queues without consuming them (`drain.ts`);
 * 6. decide each socket's role (`role.ts`) and find the peers that are on this node
 *    (`peers.ts`);
 * 7. check that P is still the process opened, close every copy, and resume P unless it was
 *    stopped already or `leaveFrozen` is set.
 *
 * Ids are those of `identity.ts`. The manifest is for a restore: its `pid` is 0 (the restored
 * process does not exist yet) and `checkpointPid` is P. An endpoint whose peer is on another
 * node has no `peer` until the cluster map fills it in (`cluster-map.ts`); until then the
 * manifest does not pass validation for a restore.
 *
 * Ownership: every fd this module opens (the pidfd, the copies) is closed before it returns or
 * throws. The returned buffers belong to the caller.
 */
import { readlinkSync } from 'node:fs';

import { close, getpid, SyscallError } from '../../ffi/index.ts';
import type { Endpoint, Manifest, ProcessId } from '../model/types.ts';
import { describeSocket, type DescribedSocket, type UnsupportedSocket } from './describe.ts';
import { drainSockets, type DrainOutcome, type QueueSummary, type SocketDrain } from './drain.ts';
import { denied, vanished } from './errors.ts';
import { freeze, resume } from './freeze.ts';
import { capturedEndpointId, capturedProcessId } from './identity.ts';
import { findLocalPeers, type LocalPeer } from './peers.ts';
import { ephemeralPorts, fdCloexec, listFds, readComm, socketInode, type FdEntry } from './proc.ts';
import { decideRole, type RoleReason } from './role.ts';
import { CaptureTarget } from './target.ts';

export interface CaptureOptions {
  /** The node id of this node: the host id of the captured process's id. */
  nodeId: bigint;
  /** Freeze the process and copy its queues. */
  drain?: boolean;
  /**
   * With `drain`: leave the process frozen afterwards (resume it later with `resumeProcess`).
   * A capture that fails resumes the process all the same.
   */
  leaveFrozen?: boolean;
  /** Look for the peers that run on this node (default true). */
  localPeers?: boolean;
}

/** What the capture found about one endpoint beyond what the manifest holds. */
export interface SocketReport {
  conn: number;
  inode: number;
  fds: number[];
  /** Close-on-exec of each fd (it is per fd; the manifest keeps the first fd's). */
  cloexec: Record<number, boolean>;
  roleReason: RoleReason;
  tcpState?: string;
  /** SIOCINQ and SIOCOUTQ in bytes at capture. */
  queues?: { receive: number; send: number };
  /** The peer found on this node, when it is on this node. */
  localPeer?: LocalPeer;
  drain?: SocketDrain;
}

/** A socket that is not in the manifest, and why. */
export interface SkippedSocket extends Omit<UnsupportedSocket, 'kind'> {
  fds: number[];
}

export interface DrainReport {
  /** The process was already stopped when the drain began (and is left stopped). */
  wasStopped: boolean;
  /** The process was resumed at the end. */
  resumed: boolean;
  quiet: boolean;
  waitedMs: number;
  queues: QueueSummary;
}

export interface CaptureResult {
  pid: number;
  capturedAt: Date;
  manifest: Manifest;
  /** One per endpoint, in the manifest's order. */
  sockets: SocketReport[];
  skipped: SkippedSocket[];
  /** Every fd that is not a socket. */
  files: FdEntry[];
  drain?: DrainReport;
}

/**
 * Captures process `pid`.
 * @throws {CaptureError} ENOPROC, EZOMBIE, ECAPTURE_DENIED, EVANISHED, EFREEZE
 */
export async function captureProcess(pid: number, options: CaptureOptions): Promise<CaptureResult> {
  using target = CaptureTarget.open(pid);
  return await captureTarget(target, options);
}

/**
 * Captures an opened target (`captureProcess` without the open). The target stays open.
 * @throws {CaptureError} ECAPTURE_DENIED, EVANISHED, EFREEZE
 */
export async function captureTarget(
  target: CaptureTarget,
  options: CaptureOptions,
): Promise<CaptureResult> {
  target.ensureAlive('the capture began');
  const frozen = options.drain ? await freeze(target.pidfd, target.pid) : undefined;
  const resumeAtEnd = frozen !== undefined && !frozen.wasStopped && !options.leaveFrozen;
  let result: CaptureResult | undefined;
  try {
    result = await readProcess(target, options);
  } finally {
    // A failed capture does not leave frozen a process it froze, whatever `leaveFrozen` says.
    const froze = frozen !== undefined && !frozen.wasStopped;
    if (resumeAtEnd || (froze && result === undefined)) resumeAfter(target, result !== undefined);
  }
  if (result.drain && frozen) {
    result.drain.wasStopped = frozen.wasStopped;
    result.drain.resumed = resumeAtEnd;
  }
  return result;
}

/** Resumes the target; when the capture already failed, its error is the one to report. */
function resumeAfter(target: CaptureTarget, succeeded: boolean): void {
  try {
    resume(target.pidfd, target.pid);
  } catch (err) {
    if (succeeded) throw err;
  }
}

/**
 * Continues a process left frozen by a drain with `leaveFrozen`.
 * @throws {CaptureError} ENOPROC, EZOMBIE, ECAPTURE_DENIED, EVANISHED
 */
export function resumeProcess(pid: number): void {
  using target = CaptureTarget.open(pid);
  resume(target.pidfd, target.pid);
}

async function readProcess(target: CaptureTarget, options: CaptureOptions): Promise<CaptureResult> {
  const table = readFdTable(target);
  const { sockets, files } = groupSockets(table);
  using copies = new FdCopies();
  const described: DescribedSocket[] = [];
  const skipped: SkippedSocket[] = [];
  for (const [inode, fds] of sockets) {
    const fd = copies.copy(target, fds, inode);
    if (fd === undefined) continue;
    const d = describeOrSkip(fd, inode);
    if (d.kind === 'unsupported') skipped.push({ ...withoutKind(d), fds });
    else described.push(d);
  }

  let drained: DrainOutcome | undefined;
  if (options.drain) {
    const inputs = described.map((socket) => ({ fd: copies.fdOf(socket.inode)!, socket }));
    drained = await drainSockets(inputs);
  }
  const self = getpid() === target.pid ? undefined : getpid();
  const peers =
    options.localPeers === false ? new Map() : findLocalPeers(described, options.nodeId, self);
  target.ensureAlive('its sockets were being read');
  return assemble(target, options, { described, sockets, skipped, files, peers, drained });
}

/** The socket read, or left out with the failed call as the reason. */
function describeOrSkip(fd: number, inode: number): DescribedSocket | UnsupportedSocket {
  try {
    return describeSocket(fd, inode);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    const reason = `cannot be read: ${err.message}`;
    return { kind: 'unsupported', inode, family: 'unknown', type: 'unknown', reason };
  }
}

function withoutKind(u: UnsupportedSocket): Omit<UnsupportedSocket, 'kind'> {
  const { kind: _kind, ...rest } = u;
  return rest;
}

function readFdTable(target: CaptureTarget): FdEntry[] {
  try {
    return listFds(target.pid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw denied(target.pid, 'read its fd table', err);
    throw vanished(target.pid, 'its fd table was being read', err);
  }
}

/** Sockets by inode (fds ascending, inodes in order of their first fd) and the other fds. */
function groupSockets(table: FdEntry[]): { sockets: Map<number, number[]>; files: FdEntry[] } {
  const sockets = new Map<number, number[]>();
  const files: FdEntry[] = [];
  for (const entry of table) {
    const inode = socketInode(entry.target);
    if (inode === undefined) {
      files.push(entry);
      continue;
    }
    sockets.set(inode, [...(sockets.get(inode) ?? []), entry.fd]);
  }
  return { sockets, files };
}

/** The copies of the process's sockets, closed together when disposed. */
class FdCopies implements Disposable {
  readonly #byInode = new Map<number, number>();

  /** Copies the first fd of `fds` that still refers to socket `inode`. */
  copy(target: CaptureTarget, fds: readonly number[], inode: number): number | undefined {
    for (const fd of fds) {
      const copy = target.copyFd(fd);
      if (copy === undefined) continue;
      if (readlinkSync(`/proc/self/fd/${copy}`) === `socket:[${inode}]`) {
        this.#byInode.set(inode, copy);
        return copy;
      }
      close(copy); // the process closed the fd and reused its number meanwhile
    }
    return undefined;
  }

  fdOf(inode: number): number | undefined {
    return this.#byInode.get(inode);
  }

  [Symbol.dispose](): void {
    for (const fd of this.#byInode.values()) close(fd);
    this.#byInode.clear();
  }
}

interface Found {
  described: DescribedSocket[];
  sockets: Map<number, number[]>;
  skipped: SkippedSocket[];
  files: FdEntry[];
  peers: Map<number, LocalPeer>;
  drained: DrainOutcome | undefined;
}

function assemble(target: CaptureTarget, options: CaptureOptions, found: Found): CaptureResult {
  const process = capturedProcessId(options.nodeId, target.pid, target.startTicks);
  const context = {
    listeners: found.described.filter((s) => s.listening && s.local).map((s) => s.local!),
    ephemeral: ephemeralPorts(),
  };
  const endpoints: Endpoint[] = [];
  const reports: SocketReport[] = [];
  for (const s of found.described) {
    const fds = found.sockets.get(s.inode)!;
    const { role, reason } = decideRole(s, context);
    const report = socketReport(target.pid, s, fds, reason, found);
    endpoints.push(toEndpoint(process, s, fds, role, report, options.nodeId));
    reports.push(report);
  }

  const manifest: Manifest = {
    process,
    executable: readComm(target.pid) || 'unknown',
    pid: 0,
    checkpointPid: target.pid,
    nodeId: options.nodeId,
    endpoints,
  };
  const result: CaptureResult = {
    pid: target.pid,
    capturedAt: new Date(),
    manifest,
    sockets: reports,
    skipped: found.skipped,
    files: found.files,
  };
  if (found.drained) result.drain = drainReport(found.drained);
  return result;
}

function socketReport(
  pid: number,
  s: DescribedSocket,
  fds: number[],
  roleReason: RoleReason,
  found: Found,
): SocketReport {
  const cloexec: Record<number, boolean> = {};
  for (const fd of fds) cloexec[fd] = fdCloexec(pid, fd) ?? s.fcntl.cloexec;
  const report: SocketReport = { conn: s.inode, inode: s.inode, fds, cloexec, roleReason };
  if (s.tcpState !== undefined) report.tcpState = s.tcpState;
  if (s.queues) report.queues = s.queues;
  const peer = found.peers.get(s.inode);
  if (peer) report.localPeer = peer;
  const drain = found.drained?.sockets.get(s.inode);
  if (drain) report.drain = drain;
  return report;
}

function toEndpoint(
  process: ProcessId,
  s: DescribedSocket,
  fds: number[],
  role: Endpoint['role'],
  report: SocketReport,
  nodeId: bigint,
): Endpoint {
  const e: Endpoint = {
    id: capturedEndpointId(process, s.inode),
    role,
    family: s.family,
    type: s.type,
    protocol: s.protocol,
    fds,
    options: s.options,
    fcntl: { ...s.fcntl, cloexec: report.cloexec[fds[0]!] ?? s.fcntl.cloexec },
    drained: report.drain?.receive ?? new Uint8Array(0),
  };
  if (s.local) e.local = s.local;
  if (s.remote) e.remote = s.remote;
  if (s.backlog !== undefined && role === 'listen') e.backlog = s.backlog;
  // Bytes sent but not yet received by the peer: a restore sends them after the peer's drained.
  const unsent = report.drain?.send;
  if (unsent && unsent.length > 0) e.unsent = unsent;
  const peer = report.localPeer;
  if (peer?.process && role !== 'listen') {
    e.peer = capturedEndpointId(peer.process, peer.inode);
    e.peerNode = nodeId;
    if (peer.executable) e.peerExecutable = peer.executable;
  }
  return e;
}

function drainReport(d: DrainOutcome): DrainReport {
  return {
    wasStopped: false,
    resumed: false,
    quiet: d.quiet,
    waitedMs: d.waitedMs,
    queues: d.queues,
  };
}
