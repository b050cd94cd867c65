/**
 * The JSON form of a capture, as `rewire capture` prints it and `GET /v1/processes/:pid/sockets`
 * answers: the manifest in its JSON form (`manifestToJson`, readable by `parseManifest` once
 * every connected endpoint has a peer), and beside it what the manifest has no field for:
 * per socket the TCP state, queue lengths, the reason for its role, the local peer and the
 * copied send queue; the sockets left out and why; every other fd; and which queues the
 * capture holds.
 */
import { endpointKey } from '../model/ids.ts';
import { manifestToJson, toBase64, type ManifestJson } from '../model/json-form.ts';
import type { CaptureResult, DrainReport, SkippedSocket, SocketReport } from './capture.ts';
import type { QueueSummary } from './drain.ts';
import type { FdEntry } from './proc.ts';

export interface SocketReportJson {
  conn: number;
  inode: number;
  fds: number[];
  cloexec: Record<string, boolean>;
  role: string;
  roleReason: string;
  tcpState?: string;
  queues?: { receive: number; send: number };
  /** The peer found on this node: its endpoint id (key form) and the processes holding it. */
  localPeer?: { endpoint?: string; inode: number; pids: number[]; executable?: string };
  drained?: {
    receive: { bytes: number; complete: boolean; skipped?: string };
    send?: { bytes: number; data: string } | { skipped: string };
  };
}

export interface CaptureJson {
  pid: number;
  capturedAt: string;
  manifest: ManifestJson;
  sockets: SocketReportJson[];
  skipped: SkippedSocket[];
  files: FdEntry[];
  /** Which queues the manifest (`drained`) and `sockets[].drained.send` hold. */
  queues: QueueSummary;
  drain?: Omit<DrainReport, 'queues'>;
}

const notDrained: QueueSummary = {
  receive: false,
  send: false,
  reason: 'not drained: capture with --drain to copy the queues',
};

/** The JSON form of a capture. */
export function captureToJson(result: CaptureResult): CaptureJson {
  const manifest = manifestToJson(result.manifest);
  const out: CaptureJson = {
    pid: result.pid,
    capturedAt: result.capturedAt.toISOString(),
    manifest,
    sockets: result.sockets.map((s, i) => socketToJson(s, manifest.endpoints[i]!.role)),
    skipped: result.skipped,
    files: result.files,
    queues: result.drain?.queues ?? notDrained,
  };
  if (result.drain) {
    const { queues: _queues, ...drain } = result.drain;
    out.drain = drain;
  }
  return out;
}

function socketToJson(s: SocketReport, role: string): SocketReportJson {
  const out: SocketReportJson = {
    conn: s.conn,
    inode: s.inode,
    fds: s.fds,
    cloexec: Object.fromEntries(Object.entries(s.cloexec)),
    role,
    roleReason: s.roleReason,
  };
  if (s.tcpState !== undefined) out.tcpState = s.tcpState;
  if (s.queues) out.queues = s.queues;
  if (s.localPeer) {
    const { inode, pids, process, executable } = s.localPeer;
    out.localPeer = { inode, pids };
    if (process) out.localPeer.endpoint = endpointKey({ process, conn: inode });
    if (executable) out.localPeer.executable = executable;
  }
  if (s.drain) out.drained = drainToJson(s.drain);
  return out;
}

function drainToJson(d: NonNullable<SocketReport['drain']>): SocketReportJson['drained'] {
  const receive: { bytes: number; complete: boolean; skipped?: string } = {
    bytes: d.receive.length,
    complete: d.receiveComplete,
  };
  if (d.receiveSkipped !== undefined) receive.skipped = d.receiveSkipped;
  if (d.send) return { receive, send: { bytes: d.send.length, data: toBase64(d.send) } };
  if (d.sendSkipped !== undefined) return { receive, send: { skipped: d.sendSkipped } };
  return { receive };
}
