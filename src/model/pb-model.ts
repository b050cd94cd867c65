/**
 * Conversion between the model of `types.ts` and the plain objects protobufjs encodes and
 * decodes (`Pb*`, the messages of `proto/rewire.proto` with camelCase fields). Used by
 * `codec.ts`, which owns the schema and turns `ShapeProblem`s into `FrameError`s.
 *
 * Every field of a `Pb*` object is optional: on encode absent means "not written", on decode
 * protobufjs fills absent scalars with their zero value and absent messages with null.
 */
import type {
  Address,
  Endpoint,
  EndpointId,
  FcntlState,
  Family,
  Manifest,
  NodeInfo,
  Placement,
  PlacementEntry,
  ProcessId,
  Replacement,
  Role,
  SocketOption,
  SocketType,
} from './types.ts';

/** A 64-bit integer as protobufjs holds it: two's-complement halves (long.js `Long`). */
export interface Long64 {
  low: number;
  high: number;
}

export interface PbProcessId {
  hostId?: Long64;
  pid?: number;
  birthTime?: Long64;
  generation?: number;
}

export interface PbEndpointId {
  process?: PbProcessId | null;
  conn?: number;
}

export interface PbAddress {
  family?: number;
  address?: string;
  port?: number;
  path?: string;
  abstract?: string;
  scopeId?: number;
  flowinfo?: number;
}

export interface PbOption {
  level?: number;
  name?: number;
  value?: Uint8Array;
  label?: string;
}

export interface PbFcntl {
  statusFlags?: number;
  owner?: number;
  signal?: number;
  cloexec?: boolean;
}

export interface PbEndpoint {
  id?: PbEndpointId | null;
  peer?: PbEndpointId | null;
  role?: number;
  family?: number;
  type?: number;
  protocol?: number;
  fds?: number[];
  local?: PbAddress | null;
  remote?: PbAddress | null;
  backlog?: number;
  options?: PbOption[];
  fcntl?: PbFcntl | null;
  drained?: Uint8Array;
  peerNode?: Long64;
  peerExecutable?: string;
  unsent?: Uint8Array;
}

export interface PbManifest {
  process?: PbProcessId | null;
  executable?: string;
  pid?: number;
  checkpointPid?: number;
  nodeId?: Long64;
  job?: string;
  endpoints?: PbEndpoint[];
}

export interface PbNodeInfo {
  nodeId?: Long64;
  address?: string;
  port?: number;
  name?: string;
  departed?: boolean;
}

export interface PbPlacement {
  version?: Long64;
  nodes?: PbNodeInfo[];
  processes?: { process?: PbProcessId | null; nodeId?: Long64 }[];
  replacements?: { old?: PbProcessId | null; new?: PbProcessId | null }[];
}

/** A decoded message that lacks something required; `path` says where. */
export class ShapeProblem extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(path === '' ? problem : `${path} ${problem}`);
  }
}

// ---- Scalars ------------------------------------------------------------------------------

const U64_MAX = (1n << 64n) - 1n;
const EMPTY = new Uint8Array(0);

/** A protobufjs 64-bit value as an unsigned bigint (a plain number only in tests' objects). */
export function u64(v: Long64 | number | null | undefined): bigint {
  if (v == null) return 0n;
  if (typeof v === 'number') return BigInt(v);

  const lo = v.low >>> 0;
  const hi = v.high >>> 0;
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/** A bigint as the halves protobufjs writes; throws `ShapeProblem` outside 0..2^64-1. */
export function long(v: bigint, path: string): Long64 {
  if (v < 0n || v > U64_MAX) throw new ShapeProblem(path, `${v} is outside 0..2^64-1`);
  return { low: Number(v & 0xffff_ffffn) | 0, high: Number(v >> 32n) | 0 };
}

/** Decoded bytes as a plain Uint8Array view (protobufjs gives Buffers, or `[]` when absent). */
export function bytes(v: Uint8Array | null | undefined): Uint8Array {
  if (v == null || v.length === 0) return EMPTY;
  if (v.constructor === Uint8Array) return v;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** An enum number as its model name; unspecified (0) and unknown numbers are problems. */
export function enumName<T extends string>(
  names: readonly (T | undefined)[],
  v: number | undefined,
  path: string,
): T {
  const name = v ? names[v] : undefined;
  if (name !== undefined) return name;
  throw new ShapeProblem(path, v ? `has the unknown value ${v}` : 'is unspecified');
}

/** Model enum names in proto order; index 0, the UNSPECIFIED value, has none. */
const ROLES = [undefined, 'connect', 'accept', 'listen'] as const;
const FAMILIES = [undefined, 'inet', 'inet6', 'unix'] as const;
const TYPES = [undefined, 'stream', 'seqpacket'] as const;
const ROLE_NUMBER: Record<Role, number> = { connect: 1, accept: 2, listen: 3 };
const FAMILY_NUMBER: Record<Family, number> = { inet: 1, inet6: 2, unix: 3 };
const TYPE_NUMBER: Record<SocketType, number> = { stream: 1, seqpacket: 2 };

function need<T>(v: T | null | undefined, path: string): T {
  if (v == null) throw new ShapeProblem(path, 'is missing');
  return v;
}

function list<T>(v: T[] | undefined): T[] {
  return v === undefined || v.length === 0 ? [] : v;
}

// ---- Ids ----------------------------------------------------------------------------------

/**
 * Recently decoded values, reused when the same one comes again: a manifest names its own
 * process and its peers once per endpoint, tens of thousands of times, and most endpoints
 * record the same options. The model's values are never modified, so sharing them is safe;
 * a shared option owns a copy of its value bytes, so that it keeps no message buffer alive.
 */
class RecentValues<K, V> {
  readonly #keys: K[] = [];
  readonly #values: V[] = [];
  #next = 0;

  constructor(
    readonly size: number,
    readonly same: (a: K, b: K) => boolean,
  ) {}

  find(key: K): V | undefined {
    for (let i = 0; i < this.#keys.length; i++) {
      if (this.same(this.#keys[i]!, key)) return this.#values[i];
    }
    return undefined;
  }

  add(key: K, value: V): V {
    this.#keys[this.#next] = key;
    this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.size;
    return value;
  }
}

type ProcessKey = [number, number, number, number, number, number];

const recentProcesses = new RecentValues<ProcessKey, ProcessId>(16, (a, b) =>
  a.every((x, i) => x === b[i]),
);

export function processFromPb(m: PbProcessId | null | undefined, path: string): ProcessId {
  const p = need(m, path);
  const { hostId, birthTime } = p;
  const pid = p.pid ?? 0;
  const generation = p.generation ?? 0;
  if (typeof hostId !== 'object' || !hostId || typeof birthTime !== 'object' || !birthTime) {
    return { hostId: u64(hostId), pid, birthTime: u64(birthTime), generation };
  }
  const key: ProcessKey = [hostId.low, hostId.high, birthTime.low, birthTime.high, pid, generation];
  return (
    recentProcesses.find(key) ??
    recentProcesses.add(key, { hostId: u64(hostId), pid, birthTime: u64(birthTime), generation })
  );
}

/** Process ids already converted: the same few are encoded once per endpoint. */
const processesToPb = new WeakMap<ProcessId, PbProcessId>();

export function processToPb(p: ProcessId, path: string): PbProcessId {
  const known = processesToPb.get(p);
  if (known) return known;
  const out = {
    hostId: long(p.hostId, `${path}.hostId`),
    pid: p.pid,
    birthTime: long(p.birthTime, `${path}.birthTime`),
    generation: p.generation,
  };
  processesToPb.set(p, out);
  return out;
}

export function endpointIdFromPb(m: PbEndpointId | null | undefined, path: string): EndpointId {
  const e = need(m, path);
  return { process: processFromPb(e.process, `${path}.process`), conn: e.conn ?? 0 };
}

export function endpointIdToPb(e: EndpointId, path: string): PbEndpointId {
  return { process: processToPb(e.process, `${path}.process`), conn: e.conn };
}

// ---- Endpoint parts -----------------------------------------------------------------------

/** The address fields other than family, copied when set (proto3 reads 0 and '' as unset). */
const ADDRESS_FIELDS = ['address', 'port', 'path', 'abstract', 'scopeId', 'flowinfo'] as const;

function copyAddressFields<T extends Partial<Record<(typeof ADDRESS_FIELDS)[number], unknown>>>(
  from: Partial<Record<(typeof ADDRESS_FIELDS)[number], unknown>>,
  to: T,
): T {
  for (const key of ADDRESS_FIELDS) if (from[key]) (to as Record<string, unknown>)[key] = from[key];
  return to;
}

function addressFromPb(a: PbAddress, path: string): Address {
  const out: Address = { family: enumName(FAMILIES, a.family, `${path}.family`) };
  return copyAddressFields(a, out);
}

function addressToPb(a: Address): PbAddress {
  const out: PbAddress = { family: FAMILY_NUMBER[a.family] };
  return copyAddressFields(a, out);
}

const recentOptions = new RecentValues<SocketOption, SocketOption>(
  32,
  (a, b) =>
    a.level === b.level &&
    a.name === b.name &&
    a.label === b.label &&
    a.value.length === b.value.length &&
    a.value.every((x, i) => x === b.value[i]),
);

function optionFromPb(o: PbOption): SocketOption {
  const out: SocketOption = { level: o.level ?? 0, name: o.name ?? 0, value: bytes(o.value) };
  if (o.label) out.label = o.label;
  if (out.value.length > 64) return out;
  const known = recentOptions.find(out);
  if (known) return known;
  const owned = { ...out, value: out.value.slice() };
  return recentOptions.add(owned, owned);
}

function optionToPb(o: SocketOption): PbOption {
  const out: PbOption = { level: o.level, name: o.name, value: o.value };
  if (o.label) out.label = o.label;
  return out;
}

function fcntlFromPb(f: PbFcntl): FcntlState {
  return {
    statusFlags: f.statusFlags ?? 0,
    owner: f.owner ?? 0,
    signal: f.signal ?? 0,
    cloexec: f.cloexec ?? false,
  };
}

// ---- Endpoint and manifest ----------------------------------------------------------------

function endpointFromPb(m: PbEndpoint, path: string): Endpoint {
  const out: Endpoint = {
    id: endpointIdFromPb(m.id, `${path}.id`),
    role: enumName(ROLES, m.role, `${path}.role`),
    family: enumName(FAMILIES, m.family, `${path}.family`),
    type: enumName(TYPES, m.type, `${path}.type`),
    protocol: m.protocol ?? 0,
    fds: list(m.fds),
    options: list(m.options).map(optionFromPb),
    drained: bytes(m.drained),
  };
  if (m.peer) out.peer = endpointIdFromPb(m.peer, `${path}.peer`);
  if (m.local) out.local = addressFromPb(m.local, `${path}.local`);
  if (m.remote) out.remote = addressFromPb(m.remote, `${path}.remote`);
  if (m.backlog) out.backlog = m.backlog;
  if (m.fcntl) out.fcntl = fcntlFromPb(m.fcntl);
  const peerNode = u64(m.peerNode);
  if (peerNode !== 0n) out.peerNode = peerNode;
  if (m.peerExecutable) out.peerExecutable = m.peerExecutable;
  const unsent = bytes(m.unsent);
  if (unsent.length > 0) out.unsent = unsent;
  return out;
}

function endpointToPb(e: Endpoint, path: string): PbEndpoint {
  const out: PbEndpoint = {
    id: endpointIdToPb(e.id, `${path}.id`),
    role: ROLE_NUMBER[e.role],
    family: FAMILY_NUMBER[e.family],
    type: TYPE_NUMBER[e.type],
    protocol: e.protocol,
    fds: e.fds,
    options: e.options.map(optionToPb),
  };
  if (e.peer) out.peer = endpointIdToPb(e.peer, `${path}.peer`);
  if (e.local) out.local = addressToPb(e.local);
  if (e.remote) out.remote = addressToPb(e.remote);
  if (e.backlog) out.backlog = e.backlog;
  if (e.fcntl) out.fcntl = e.fcntl;
  if (e.drained.length > 0) out.drained = e.drained;
  if (e.peerNode) out.peerNode = long(e.peerNode, `${path}.peerNode`);
  if (e.peerExecutable) out.peerExecutable = e.peerExecutable;
  if (e.unsent && e.unsent.length > 0) out.unsent = e.unsent;
  return out;
}

export function manifestFromPb(m: PbManifest, path = ''): Manifest {
  const at = path === '' ? '' : `${path}.`;
  const endpoints = list(m.endpoints);
  const out: Manifest = {
    process: processFromPb(m.process, `${at}process`),
    executable: m.executable ?? '',
    pid: m.pid ?? 0,
    endpoints: new Array<Endpoint>(endpoints.length),
  };
  for (let i = 0; i < endpoints.length; i++) {
    out.endpoints[i] = endpointFromPb(endpoints[i]!, `${at}endpoints[${i}]`);
  }
  if (m.checkpointPid) out.checkpointPid = m.checkpointPid;
  const nodeId = u64(m.nodeId);
  if (nodeId !== 0n) out.nodeId = nodeId;
  if (m.job) out.job = m.job;
  return out;
}

export function manifestToPb(m: Manifest): PbManifest {
  const out: PbManifest = {
    process: processToPb(m.process, 'process'),
    executable: m.executable,
    pid: m.pid,
    endpoints: m.endpoints.map((e, i) => endpointToPb(e, `endpoints[${i}]`)),
  };
  if (m.checkpointPid) out.checkpointPid = m.checkpointPid;
  if (m.nodeId) out.nodeId = long(m.nodeId, 'nodeId');
  if (m.job) out.job = m.job;
  return out;
}

// ---- Placement ----------------------------------------------------------------------------

function nodeFromPb(n: PbNodeInfo): NodeInfo {
  const out: NodeInfo = { nodeId: u64(n.nodeId), address: n.address ?? '', port: n.port ?? 0 };
  if (n.name) out.name = n.name;
  if (n.departed) out.departed = true;
  return out;
}

function nodeToPb(n: NodeInfo, path: string): PbNodeInfo {
  const out: PbNodeInfo = {
    nodeId: long(n.nodeId, `${path}.nodeId`),
    address: n.address,
    port: n.port,
  };
  if (n.name) out.name = n.name;
  if (n.departed) out.departed = true;
  return out;
}

export function placementFromPb(m: PbPlacement): Placement {
  return {
    version: u64(m.version),
    nodes: list(m.nodes).map(nodeFromPb),
    processes: list(m.processes).map((e, i): PlacementEntry => ({
      process: processFromPb(e.process, `processes[${i}].process`),
      nodeId: u64(e.nodeId),
    })),
    replacements: list(m.replacements).map((r, i): Replacement => ({
      old: processFromPb(r.old, `replacements[${i}].old`),
      new: processFromPb(r.new, `replacements[${i}].new`),
    })),
  };
}

export function placementToPb(p: Placement): PbPlacement {
  return {
    version: long(p.version, 'version'),
    nodes: p.nodes.map((n, i) => nodeToPb(n, `nodes[${i}]`)),
    processes: p.processes.map((e, i) => ({
      process: processToPb(e.process, `processes[${i}].process`),
      nodeId: long(e.nodeId, `processes[${i}].nodeId`),
    })),
    replacements: p.replacements.map((r, i) => ({
      old: processToPb(r.old, `replacements[${i}].old`),
      new: processToPb(r.new, `replacements[${i}].new`),
    })),
  };
}
