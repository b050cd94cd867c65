/**
 * The JSON form of the model (files and the HTTP API, SPEC §4): what `schema.ts` reads and
 * what `manifestToJson` and `placementToJson` write. Keys are those of `types.ts`; 64-bit ids
 * are decimal strings; byte strings are base64. A socket option is written with its C name and
 * its value decoded where rewire knows the option (`{label: 'SO_SNDBUF', int: 212992}`) and
 * always with `level`, `name` and the raw `value` too, so that nothing is lost.
 */
import { optionByNumber } from '../../ffi/sockopt.ts';
import { decodeOptionValue, type LingerValue } from './option-value.ts';
import type {
  Address,
  Endpoint,
  EndpointId,
  FcntlState,
  Manifest,
  NodeInfo,
  Placement,
  ProcessId,
  SocketOption,
} from './types.ts';

export interface ProcessIdJson {
  hostId: string;
  pid: number;
  birthTime: string;
  generation: number;
}

export interface EndpointIdJson {
  process: ProcessIdJson;
  conn: number;
}

export type AddressJson = Address;

export interface SocketOptionJson {
  label?: string;
  int?: number;
  linger?: LingerValue;
  string?: string;
  timevalMicros?: number;
  level: number;
  name: number;
  /** base64 */
  value: string;
}

export interface EndpointJson {
  id: EndpointIdJson;
  peer?: EndpointIdJson;
  role: Endpoint['role'];
  family: Endpoint['family'];
  type: Endpoint['type'];
  protocol: number;
  fds: number[];
  local?: AddressJson;
  remote?: AddressJson;
  backlog?: number;
  options: SocketOptionJson[];
  fcntl?: FcntlState;
  /** base64 */
  drained: string;
  peerNode?: string;
  peerExecutable?: string;
  /** base64 */
  unsent?: string;
}

export interface ManifestJson {
  process: ProcessIdJson;
  executable: string;
  pid: number;
  checkpointPid?: number;
  nodeId?: string;
  job?: string;
  endpoints: EndpointJson[];
}

export interface NodeInfoJson {
  nodeId: string;
  address: string;
  port: number;
  name?: string;
  departed?: boolean;
}

export interface PlacementJson {
  version: string;
  nodes: NodeInfoJson[];
  processes: { process: ProcessIdJson; nodeId: string }[];
  replacements: { old: ProcessIdJson; new: ProcessIdJson }[];
}

/** Bytes as base64 text. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** base64 text (already checked to be base64) as a plain Uint8Array. */
export function fromBase64(text: string): Uint8Array {
  const b = Buffer.from(text, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The JSON form of a manifest; `parseManifest` reads it back to an equal manifest. */
export function manifestToJson(m: Manifest): ManifestJson {
  const out: ManifestJson = {
    process: processToJson(m.process),
    executable: m.executable,
    pid: m.pid,
    endpoints: m.endpoints.map(endpointToJson),
  };
  if (m.checkpointPid !== undefined) out.checkpointPid = m.checkpointPid;
  if (m.nodeId !== undefined) out.nodeId = String(m.nodeId);
  if (m.job !== undefined) out.job = m.job;
  return out;
}

/** The JSON form of a placement; `parsePlacement` reads it back to an equal placement. */
export function placementToJson(p: Placement): PlacementJson {
  return {
    version: String(p.version),
    nodes: p.nodes.map(nodeToJson),
    processes: p.processes.map((e) => ({
      process: processToJson(e.process),
      nodeId: String(e.nodeId),
    })),
    replacements: p.replacements.map((r) => ({
      old: processToJson(r.old),
      new: processToJson(r.new),
    })),
  };
}

function processToJson(p: ProcessId): ProcessIdJson {
  return {
    hostId: String(p.hostId),
    pid: p.pid,
    birthTime: String(p.birthTime),
    generation: p.generation,
  };
}

function endpointIdToJson(e: EndpointId): EndpointIdJson {
  return { process: processToJson(e.process), conn: e.conn };
}

function endpointToJson(e: Endpoint): EndpointJson {
  const out: EndpointJson = {
    id: endpointIdToJson(e.id),
    role: e.role,
    family: e.family,
    type: e.type,
    protocol: e.protocol,
    fds: [...e.fds],
    options: e.options.map(optionToJson),
    drained: toBase64(e.drained),
  };
  if (e.peer) out.peer = endpointIdToJson(e.peer);
  if (e.local) out.local = { ...e.local };
  if (e.remote) out.remote = { ...e.remote };
  if (e.backlog !== undefined) out.backlog = e.backlog;
  if (e.fcntl) out.fcntl = { ...e.fcntl };
  if (e.peerNode !== undefined) out.peerNode = String(e.peerNode);
  if (e.peerExecutable !== undefined) out.peerExecutable = e.peerExecutable;
  if (e.unsent !== undefined && e.unsent.length > 0) out.unsent = toBase64(e.unsent);
  return out;
}

function optionToJson(o: SocketOption): SocketOptionJson {
  const spec = optionByNumber(o.level, o.name);
  const label = spec?.name ?? o.label;
  const typed = spec && decodeOptionValue(spec.kind, o.value);
  return {
    ...(label !== undefined && { label }),
    ...typed,
    level: o.level,
    name: o.name,
    value: toBase64(o.value),
  };
}

function nodeToJson(n: NodeInfo): NodeInfoJson {
  const out: NodeInfoJson = { nodeId: String(n.nodeId), address: n.address, port: n.port };
  if (n.name !== undefined) out.name = n.name;
  if (n.departed) out.departed = true;
  return out;
}
