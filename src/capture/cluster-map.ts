/**
 * The cluster's connection map (SPEC §3.10): the captures of every agent joined into "which
 * process on which node is connected to which", with each endpoint's peer id filled in.
 *
 * Two TCP endpoints are the two ends of one connection when each one's local address is the
 * other's remote address. Addresses are compared as IP and port, an IPv4-mapped IPv6 address
 * as its IPv4 address. When several captured endpoints fit (the same loopback 4-tuple on two
 * nodes), the one on the same node is taken for a loopback address; any other tie is reported
 * as ambiguous rather than guessed, and two endpoints pair only when each is the other's
 * choice. An endpoint whose capture already named its peer on its own node (`peers.ts`; unix
 * sockets are only ever joined that way) keeps that peer unless a capture holds the other end
 * by address: a capture by the agent of another node says where that process runs.
 *
 * Known shortcoming: addresses rewritten on the way (NAT, proxies) do not pair up; such
 * endpoints are reported unmatched.
 */
import { endpointKey, processKey } from '../model/ids.ts';
import type { Address, Endpoint, EndpointId, Manifest } from '../model/types.ts';

/** The captures one node's agent holds. */
export interface NodeCaptures {
  nodeId: bigint;
  manifests: readonly Manifest[];
}

/** One end of a connection in the map. */
export interface MapEnd {
  node: string;
  process: string;
  pid: number;
  executable: string;
  endpoint: string;
  role: string;
  address: string;
}

/** One connection: `from` connected to `to` (by role; by endpoint id when roles agree). */
export interface MapConnection {
  family: string;
  from: MapEnd;
  to: MapEnd;
  /** `address`: both ends were captured and joined; `local`: the peer was found on its node. */
  joinedBy: 'address' | 'local';
  /** The peer was found but not captured: `to` carries its id and node only. */
  peerCaptured: boolean;
}

export interface UnmatchedEndpoint extends MapEnd {
  remote: string;
  reason: string;
}

/** The peer an endpoint was joined to. */
export interface JoinedPeer {
  peer: EndpointId;
  peerNode: bigint;
  peerExecutable?: string;
}

export interface ClusterJoin {
  connections: MapConnection[];
  unmatched: UnmatchedEndpoint[];
  /** By endpoint key: the peer each joined endpoint now has. */
  peers: Map<string, JoinedPeer>;
}

interface Entry {
  node: bigint;
  manifest: Manifest;
  endpoint: Endpoint;
  key: string;
}

/** Joins the captures of every node. */
export function joinCaptures(nodes: readonly NodeCaptures[]): ClusterJoin {
  const entries = collect(nodes);
  const byAddresses = indexByAddresses(entries);
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const out: ClusterJoin = { connections: [], unmatched: [], peers: new Map() };
  const paired = new Set<string>();
  const choices = new Map(entries.map((e) => [e.key, partnerOf(e, byAddresses)]));

  for (const e of entries) {
    if (paired.has(e.key)) continue;
    const found = mutual(e, choices);
    if ('partner' in found) {
      pair(e, found.partner, out, paired);
      continue;
    }
    if (e.endpoint.peer && e.endpoint.peerNode !== undefined) {
      localPeer(e, byKey.get(endpointKey(e.endpoint.peer)), out, paired);
      continue;
    }
    out.unmatched.push({
      ...mapEnd(e),
      remote: formatAddress(e.endpoint.remote),
      reason: found.reason,
    });
  }
  return out;
}

type Choice = { partner: Entry } | { reason: string };

/** The partner `e` chose, if that partner chose `e` too. */
function mutual(e: Entry, choices: Map<string, Choice>): Choice {
  const mine = choices.get(e.key)!;
  if (!('partner' in mine)) return mine;
  const theirs = choices.get(mine.partner.key)!;
  if ('partner' in theirs && theirs.partner === e) return mine;
  return { reason: 'the captured end with the other addresses is paired with a closer endpoint' };
}

function collect(nodes: readonly NodeCaptures[]): Entry[] {
  const entries: Entry[] = [];
  for (const { nodeId, manifests } of nodes) {
    for (const manifest of manifests) {
      for (const endpoint of manifest.endpoints) {
        if (endpoint.role === 'listen') continue;
        entries.push({ node: nodeId, manifest, endpoint, key: endpointKey(endpoint.id) });
      }
    }
  }
  return entries;
}

function indexByAddresses(entries: Entry[]): Map<string, Entry[]> {
  const index = new Map<string, Entry[]>();
  for (const e of entries) {
    const key = pairKey(e.endpoint.local, e.endpoint.remote);
    if (key !== undefined) index.set(key, [...(index.get(key) ?? []), e]);
  }
  return index;
}

function partnerOf(e: Entry, index: Map<string, Entry[]>): Choice {
  const key = pairKey(e.endpoint.remote, e.endpoint.local);
  if (key === undefined) {
    return {
      reason: 'unix sockets are joined on their own node only, and no peer was found there',
    };
  }
  let candidates = (index.get(key) ?? []).filter((c) => c.key !== e.key);
  if (candidates.length === 0) {
    return { reason: 'no capture holds the other end: capture the peer process on its node' };
  }
  const sameNode = candidates.filter((c) => c.node === e.node);
  if (isLoopback(e.endpoint.remote) && sameNode.length > 0) candidates = sameNode;
  if (candidates.length === 1) return { partner: candidates[0]! };
  return {
    reason: `ambiguous: ${candidates.length} captured endpoints have the other end's addresses`,
  };
}

/** `ip|port>ip|port` for an inet pair, undefined for unix. */
function pairKey(local: Address | undefined, remote: Address | undefined): string | undefined {
  const a = addressKey(local);
  const b = addressKey(remote);
  return a === undefined || b === undefined ? undefined : `${a}>${b}`;
}

function addressKey(a: Address | undefined): string | undefined {
  if (a === undefined || a.family === 'unix' || a.address === undefined) return undefined;
  return `${unmapped(a.address)}|${a.port ?? 0}`;
}

function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address.toLowerCase();
}

function isLoopback(a: Address | undefined): boolean {
  const ip = a?.address === undefined ? '' : unmapped(a.address);
  return ip.startsWith('127.') || ip === '::1';
}

function pair(a: Entry, b: Entry, out: ClusterJoin, paired: Set<string>): void {
  paired.add(a.key);
  paired.add(b.key);
  out.peers.set(a.key, joined(b));
  out.peers.set(b.key, joined(a));
  const [from, to] = ordered(a, b);
  out.connections.push({
    family: a.endpoint.family,
    from: mapEnd(from),
    to: mapEnd(to),
    joinedBy: 'address',
    peerCaptured: true,
  });
}

function localPeer(e: Entry, peer: Entry | undefined, out: ClusterJoin, paired: Set<string>): void {
  if (peer && !paired.has(peer.key)) {
    pair(e, peer, out, paired);
    out.connections.at(-1)!.joinedBy = 'local';
    return;
  }
  paired.add(e.key);
  const id = e.endpoint.peer!;
  const node = e.endpoint.peerNode!;
  const other: MapEnd = {
    node: node.toString(),
    process: processKey(id.process),
    pid: id.process.pid,
    executable: e.endpoint.peerExecutable ?? '',
    endpoint: endpointKey(id),
    role: e.endpoint.role === 'connect' ? 'accept' : 'connect',
    address: formatAddress(e.endpoint.remote),
  };
  const mine = mapEnd(e);
  const [from, to] = e.endpoint.role === 'accept' ? [other, mine] : [mine, other];
  out.connections.push({
    family: e.endpoint.family,
    from,
    to,
    joinedBy: 'local',
    peerCaptured: false,
  });
}

function joined(e: Entry): JoinedPeer {
  const out: JoinedPeer = { peer: e.endpoint.id, peerNode: e.node };
  if (e.manifest.executable) out.peerExecutable = e.manifest.executable;
  return out;
}

/** The connect side first; by endpoint key when the roles do not tell. */
function ordered(a: Entry, b: Entry): [Entry, Entry] {
  if (a.endpoint.role !== b.endpoint.role) return a.endpoint.role === 'connect' ? [a, b] : [b, a];
  return a.key < b.key ? [a, b] : [b, a];
}

function mapEnd(e: Entry): MapEnd {
  return {
    node: e.node.toString(),
    process: processKey(e.manifest.process),
    pid: e.manifest.checkpointPid ?? e.manifest.process.pid,
    executable: e.manifest.executable,
    endpoint: e.key,
    role: e.endpoint.role,
    address: formatAddress(e.endpoint.local),
  };
}

/** An address as people read it: `127.0.0.1:80`, `[::1]:80`, `/run/x.sock`, `@name`, `(unnamed)`. */
export function formatAddress(a: Address | undefined): string {
  if (a === undefined) return '';
  if (a.family === 'inet') return `${a.address}:${a.port}`;
  if (a.family === 'inet6') return `[${a.address}]:${a.port}`;
  if (a.path !== undefined) return a.path;
  if (a.abstract !== undefined) return `@${a.abstract}`;
  return '(unnamed)';
}

/** Fills in the joined peers of `m`'s endpoints (a copy; `m` is not changed). */
export function withJoinedPeers(m: Manifest, peers: ReadonlyMap<string, JoinedPeer>): Manifest {
  const endpoints = m.endpoints.map((e) => {
    const j = peers.get(endpointKey(e.id));
    if (j === undefined) return e;
    const out: Endpoint = { ...e, peer: j.peer, peerNode: j.peerNode };
    if (j.peerExecutable !== undefined) out.peerExecutable = j.peerExecutable;
    return out;
  });
  return { ...m, endpoints };
}
