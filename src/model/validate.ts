/**
 * The rules of a valid manifest and placement, on the model itself, so that they apply alike
 * to JSON (`schema.ts` runs them in its zod `superRefine`) and to protobuf received from a
 * client or a peer (`validateManifest`, `validatePlacement`).
 *
 * Each broken rule is an issue with the path of the offending field, e.g.
 * `endpoints[3].fds[0]`, a stable code, and a message that says what is wrong.
 */
import { isIP } from 'node:net';

import { ManifestError, type Issue } from './errors.ts';
import { processKey, endpointKey, sameProcess } from './ids.ts';
import type { Address, Endpoint, Family, Manifest, Placement, ProcessId } from './types.ts';

/** The most endpoints one manifest may have. */
export const MAX_ENDPOINTS = 100_000;
/** The most drained bytes one endpoint may carry: 64 MiB. */
export const MAX_DRAINED_BYTES = 64 * 1024 * 1024;
/** The most issues reported for one document; the rest are counted in a last issue. */
export const MAX_ISSUES = 100;

const INT32_MAX = 0x7fff_ffff;
/** sun_path is 108 bytes, one of which is the terminating NUL (or the abstract name's NUL). */
const UNIX_NAME_MAX = 107;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export type PathKey = string | number;

/** An issue whose path is still a list of keys, as zod keeps it. */
export interface RawIssue {
  path: PathKey[];
  code: string;
  message: string;
}

/** A path as people read it: `endpoints[3].fds[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Raw issues as `Issue`s, at most `MAX_ISSUES` of them plus one that counts the rest. */
export function toIssues(raw: readonly RawIssue[]): Issue[] {
  const shown = raw.slice(0, MAX_ISSUES).map((i) => ({ ...i, path: formatPath(i.path) }));
  if (raw.length > MAX_ISSUES) {
    const more = raw.length - MAX_ISSUES;
    shown.push({ path: '', code: 'too_many_issues', message: `${more} more problems not shown` });
  }
  return shown;
}

/** The error for a document with these issues: the first `MAX_ISSUES`, and the count. */
export function issueError(
  code: 'EMANIFEST' | 'EPLACEMENT',
  action: string,
  raw: readonly RawIssue[],
): ManifestError {
  return new ManifestError(code, action, toIssues(raw), { total: raw.length });
}

/**
 * A manifest that follows every rule, unchanged.
 * @throws {ManifestError} (EMANIFEST) with one issue per broken rule
 */
export function validateManifest(m: Manifest, action = 'Cannot use manifest'): Manifest {
  const issues = manifestIssues(m);
  if (issues.length > 0) throw issueError('EMANIFEST', action, issues);
  return m;
}

/**
 * A placement that follows every rule, unchanged.
 * @throws {ManifestError} (EPLACEMENT) with one issue per broken rule
 */
export function validatePlacement(p: Placement, action = 'Cannot use placement'): Placement {
  const issues = placementIssues(p);
  if (issues.length > 0) throw issueError('EPLACEMENT', action, issues);
  return p;
}

// ---- Manifest -----------------------------------------------------------------------------

/** Every rule the manifest breaks. */
export function manifestIssues(m: Manifest): RawIssue[] {
  const out: RawIssue[] = [];
  const add = (path: PathKey[], code: string, message: string) => out.push({ path, code, message });

  processIssues(m.process, ['process'], add);
  if (m.executable === '') add(['executable'], 'required', 'required');
  if (m.pid < 0) add(['pid'], 'invalid_pid', `${m.pid} is not a pid`);
  if (m.checkpointPid !== undefined && m.checkpointPid <= 0) {
    add(['checkpointPid'], 'invalid_pid', `${m.checkpointPid} is not a pid`);
  }
  if (m.endpoints.length > MAX_ENDPOINTS) {
    const n = m.endpoints.length;
    add(['endpoints'], 'too_big', `has ${n} endpoints; at most ${MAX_ENDPOINTS} are allowed`);
  }

  const ids = new Map<string, number>();
  const fds = new Map<number, PathKey[]>();
  m.endpoints.forEach((e, i) => {
    const at = ['endpoints', i];
    endpointIssues(m, e, at, add);
    uniqueId(e, i, ids, add);
    fdIssues(e, at, fds, add);
  });
  return out;
}

type Add = (path: PathKey[], code: string, message: string) => void;

function processIssues(p: ProcessId, at: PathKey[], add: Add): void {
  if (p.pid <= 0) add([...at, 'pid'], 'invalid_pid', `${p.pid} is not a pid`);
}

function endpointIssues(m: Manifest, e: Endpoint, at: PathKey[], add: Add): void {
  if (!sameProcess(e.id.process, m.process)) {
    const message = `is '${processKey(e.id.process)}', not the manifest's process '${processKey(m.process)}'`;
    add([...at, 'id', 'process'], 'foreign_endpoint', message);
  }
  if (e.role !== 'listen' && e.peer === undefined) {
    add([...at, 'peer'], 'missing_peer', `required for a ${e.role} endpoint`);
  }
  if (e.role === 'listen' && e.peer !== undefined) {
    add([...at, 'peer'], 'unexpected_peer', 'must be absent for a listen endpoint');
  }
  if (e.peer) processIssues(e.peer.process, [...at, 'peer', 'process'], add);
  if (e.protocol < 0) add([...at, 'protocol'], 'invalid_protocol', `${e.protocol} is negative`);
  if (e.backlog !== undefined && e.backlog < 0) {
    add([...at, 'backlog'], 'invalid_backlog', `${e.backlog} is negative`);
  }
  if (e.local) addressIssues(e.local, e.family, [...at, 'local'], add);
  if (e.remote) addressIssues(e.remote, e.family, [...at, 'remote'], add);
  if (e.drained.length > MAX_DRAINED_BYTES) {
    const message = `is ${e.drained.length} bytes; at most 64 MiB (${MAX_DRAINED_BYTES} bytes) are allowed`;
    add([...at, 'drained'], 'too_big', message);
  }
  if ((e.unsent?.length ?? 0) > MAX_DRAINED_BYTES) {
    const message = `is ${e.unsent?.length ?? 0} bytes; at most 64 MiB (${MAX_DRAINED_BYTES} bytes) are allowed`;
    add([...at, 'unsent'], 'too_big', message);
  }
}

function uniqueId(e: Endpoint, i: number, seen: Map<string, number>, add: Add): void {
  const key = endpointKey(e.id);
  const first = seen.get(key);
  if (first === undefined) {
    seen.set(key, i);
    return;
  }
  const message = `endpoint '${key}' appears twice (first at endpoints[${first}].id)`;
  add(['endpoints', i, 'id'], 'duplicate_endpoint', message);
}

function fdIssues(e: Endpoint, at: PathKey[], seen: Map<number, PathKey[]>, add: Add): void {
  if (e.fds.length === 0) add([...at, 'fds'], 'no_fds', 'must list at least one fd');

  e.fds.forEach((fd, k) => {
    const path = [...at, 'fds', k];
    if (!Number.isInteger(fd) || fd < 0 || fd > INT32_MAX) {
      add(path, 'invalid_fd', `${fd} is not an fd number (0..${INT32_MAX})`);
      return;
    }
    const first = seen.get(fd);
    if (first === undefined) seen.set(fd, path);
    else add(path, 'duplicate_fd', `fd ${fd} appears twice (first at ${formatPath(first)})`);
  });
}

function addressIssues(a: Address, family: Family, at: PathKey[], add: Add): void {
  if (a.family !== family) {
    const message = `is '${a.family}' but the endpoint's family is '${family}'`;
    add([...at, 'family'], 'family_mismatch', message);
  }
  if (a.port !== undefined && !(Number.isInteger(a.port) && a.port >= 0 && a.port <= 65535)) {
    add([...at, 'port'], 'invalid_port', `${a.port} is not a port (0..65535)`);
  }
  if (a.family === 'unix') unixAddressIssues(a, at, add);
  else inetAddressIssues(a, at, add);
}

function inetAddressIssues(a: Address, at: PathKey[], add: Add): void {
  const version = a.family === 'inet' ? 4 : 6;
  if (a.address === undefined) {
    add([...at, 'address'], 'required', `required for an ${a.family} address`);
  } else if (isIP(a.address) !== version) {
    add([...at, 'address'], 'invalid_address', `'${a.address}' is not an IPv${version} address`);
  }
  for (const key of ['path', 'abstract'] as const) {
    if (a[key] !== undefined) add([...at, key], 'unexpected_field', 'only a unix address has one');
  }
  if (a.family === 'inet') {
    for (const key of ['scopeId', 'flowinfo'] as const) {
      if (a[key] !== undefined)
        add([...at, key], 'unexpected_field', 'only an inet6 address has one');
    }
  }
}

function unixAddressIssues(a: Address, at: PathKey[], add: Add): void {
  for (const key of ['address', 'port', 'scopeId', 'flowinfo'] as const) {
    if (a[key] !== undefined) add([...at, key], 'unexpected_field', 'a unix address has none');
  }
  if (a.path !== undefined && a.abstract !== undefined) {
    add(
      [...at, 'abstract'],
      'conflicting_fields',
      'a unix address has a path or an abstract name, not both',
    );
  }
  for (const key of ['path', 'abstract'] as const) {
    const name = a[key];
    if (name === undefined) continue;
    const size = Buffer.byteLength(name);
    if (size === 0) add([...at, key], 'too_small', 'must not be empty');
    if (size > UNIX_NAME_MAX) {
      add([...at, key], 'too_big', `is ${size} bytes; at most ${UNIX_NAME_MAX} fit in sun_path`);
    }
  }
}

// ---- Placement ----------------------------------------------------------------------------

/** Every rule the placement breaks. */
export function placementIssues(p: Placement): RawIssue[] {
  const out: RawIssue[] = [];
  const add = (path: PathKey[], code: string, message: string) => out.push({ path, code, message });

  const nodes = nodeIssues(p, add);
  entryIssues(p, nodes, add);
  replacementIssues(p, add);
  return out;
}

/** Checks the nodes; returns the index of each node id. */
function nodeIssues(p: Placement, add: Add): Map<bigint, number> {
  const nodes = new Map<bigint, number>();
  p.nodes.forEach((n, i) => {
    const first = nodes.get(n.nodeId);
    if (first === undefined) nodes.set(n.nodeId, i);
    else {
      const message = `node '${n.nodeId}' appears twice (first at nodes[${first}])`;
      add(['nodes', i, 'nodeId'], 'duplicate_node', message);
    }
    nodeAddressIssues(n.address, ['nodes', i, 'address'], add);
    if (!(Number.isInteger(n.port) && n.port >= 1 && n.port <= 65535)) {
      add(['nodes', i, 'port'], 'invalid_port', `${n.port} is not a port (1..65535)`);
    }
  });
  return nodes;
}

function entryIssues(p: Placement, nodes: Map<bigint, number>, add: Add): void {
  const processes = new Map<string, number>();
  p.processes.forEach((e, i) => {
    processIssues(e.process, ['processes', i, 'process'], add);
    const key = processKey(e.process);
    const first = processes.get(key);
    if (first === undefined) processes.set(key, i);
    else {
      const message = `process '${key}' appears twice (first at processes[${first}])`;
      add(['processes', i, 'process'], 'duplicate_process', message);
    }

    const node = nodes.get(e.nodeId);
    const at = ['processes', i, 'nodeId'];
    if (node === undefined) add(at, 'unknown_node', `node '${e.nodeId}' is not in nodes`);
    else if (p.nodes[node]!.departed) add(at, 'departed_node', `node '${e.nodeId}' has departed`);
  });
}

function nodeAddressIssues(address: string, at: PathKey[], add: Add): void {
  if (address === '') {
    add(at, 'required', 'required');
  } else if (address === '0.0.0.0' || address === '::' || /^0+(\.0+){3}$/.test(address)) {
    add(
      at,
      'unroutable_address',
      `'${address}' is not routable: give the address other nodes reach this node's agent at`,
    );
  } else if (isIP(address) === 0 && !HOST_NAME.test(address)) {
    add(at, 'invalid_address', `'${address}' is not an IP address or a host name`);
  }
}

function replacementIssues(p: Placement, add: Add): void {
  const olds = new Map<string, number>();
  p.replacements.forEach((r, i) => {
    processIssues(r.old, ['replacements', i, 'old'], add);
    processIssues(r.new, ['replacements', i, 'new'], add);
    if (sameProcess(r.old, r.new))
      add(['replacements', i, 'new'], 'same_process', 'is the same process as old');
    const key = processKey(r.old);
    const first = olds.get(key);
    if (first === undefined) olds.set(key, i);
    else {
      const message = `process '${key}' is replaced twice (first at replacements[${first}])`;
      add(['replacements', i, 'old'], 'duplicate_replacement', message);
    }
  });
}
