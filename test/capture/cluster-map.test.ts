/**
 * The cluster map: two agents, each capturing the process "on its node" (two Python processes
 * connected over loopback), join their captures over the authenticated peer protocol.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';

import { accept, bind, close, getSockName, listen, socket } from '../../ffi/index.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import type { ClusterMapView } from '../../src/capture/book.ts';
import { joinCaptures } from '../../src/capture/cluster-map.ts';
import type { CaptureJson } from '../../src/capture/view.ts';
import { endpointKey, processKey } from '../../src/model/ids.ts';
import type { Endpoint, Manifest } from '../../src/model/types.ts';
import { nodesOf, place, proc, startCluster, stopAll } from '../helpers/cluster.ts';
import { startOwner, stopOwners, type Owner } from './helpers.ts';

let agents: RunningAgent[] = [];
let server: Owner<{ port: number }>;
let client: Owner;
let orphanPort = 0;
let fromA: CaptureJson;
let fromB: CaptureJson;
let map: ClusterMapView;

beforeAll(async () => {
  agents = await startCluster([1n, 2n]);
  const [a, b] = agents as [RunningAgent, RunningAgent];
  const gone = { nodeId: 3n, address: '127.0.0.1', port: closedPort() };
  place(agents, 1n, [], { nodes: [...nodesOf(agents), gone] });

  server = await startOwner<{ port: number }>(['server']);
  client = await startOwner(['client', String(server.info.port)]);
  orphanPort = await orphanConnection(server);

  fromA = await a.captureProcess(server.pid);
  fromB = await b.captureProcess(client.pid);
  map = await a.clusterConnections();
});

afterAll(async () => {
  await stopOwners();
  await stopAll(agents);
});

function closedPort(): number {
  const fd = socket('inet', 'stream');
  bind(fd, { family: 'inet', address: '127.0.0.1', port: 0 });
  const addr = getSockName(fd);
  close(fd);
  return addr.family === 'inet' ? addr.port : 0;
}

/** Makes the server dial a socket of this test, which is then closed: nobody holds that end. */
async function orphanConnection(owner: Owner): Promise<number> {
  const l = socket('inet', 'stream');
  bind(l, { family: 'inet', address: '127.0.0.1', port: 0 });
  listen(l, 1);
  const addr = getSockName(l);
  const port = addr.family === 'inet' ? addr.port : 0;
  await owner.command(`dial ${port}`);
  close(accept(l)!.fd);
  close(l);
  return port;
}

function tcpEndpoint(c: CaptureJson, remotePort: number) {
  return c.manifest.endpoints.find((e) => e.family === 'inet' && e.remote?.port === remotePort)!;
}

describe('the cluster map', () => {
  test('pairs the processes of two nodes by their addresses: which process is connected to which', () => {
    const b = tcpEndpoint(fromB, server.info.port);
    const conn = map.connections.find((c) => c.from.endpoint.includes(`:${client.pid}:`))!;
    expect(conn).toMatchObject({
      family: 'inet',
      joinedBy: 'address',
      peerCaptured: true,
      from: { node: '2', pid: client.pid, executable: 'python3', role: 'connect' },
      to: { node: '1', pid: server.pid, executable: 'python3', role: 'accept' },
    });
    expect(conn.from.endpoint).toBe(`2:${client.pid}:${b.id.process.birthTime}:1#${b.id.conn}`);
    expect(conn.to.address).toBe(`127.0.0.1:${server.info.port}`);
  });

  test('says what each node contributed, and why a node contributed nothing', () => {
    expect(map.nodes.slice(0, 2)).toEqual([
      { nodeId: '1', processes: 1 },
      { nodeId: '2', processes: 1 },
    ]);
    expect(map.nodes[2]).toMatchObject({
      nodeId: '3',
      processes: 0,
      error: { code: 'EPEER_UNREACHABLE' },
    });
  });

  test('reports an endpoint whose other end no capture holds as unmatched, with the reason', () => {
    const orphan = tcpEndpoint(fromA, orphanPort);
    expect(map.unmatched).toContainEqual(
      expect.objectContaining({
        node: '1',
        pid: server.pid,
        endpoint: endpointKey(parsedId(orphan.id)),
        remote: `127.0.0.1:${orphanPort}`,
        reason: 'no capture holds the other end: capture the peer process on its node',
      }),
    );
  });

  test('fills the peer ids in, across nodes, in later captures of both processes', async () => {
    const [a, b] = agents as [RunningAgent, RunningAgent];
    const again = await a.captureProcess(server.pid);
    const mine = tcpEndpoint(again, client.info.port);
    const theirs = tcpEndpoint(fromB, server.info.port);
    expect(mine.peer).toEqual(theirs.id);
    expect(mine.peerNode).toBe('2');

    await b.clusterConnections();
    const back = tcpEndpoint(await b.captureProcess(client.pid), server.info.port);
    expect(back.peer).toEqual(mine.id);
    expect(back.peerNode).toBe('1');
  });

  test('shows the same connection from the other agent', async () => {
    const [, b] = agents as [RunningAgent, RunningAgent];
    const other = await b.clusterConnections();
    const pair = (m: ClusterMapView) =>
      m.connections
        .filter((c) => c.joinedBy === 'address')
        .map((c) => [c.from.endpoint, c.to.endpoint]);
    expect(pair(other)).toEqual(pair(map));
  });

  test('drops a capture once its process is gone', async () => {
    const [a] = agents as [RunningAgent];
    await client.stop();
    const after = await a.clusterConnections();
    expect(after.nodes.slice(0, 2)).toEqual([
      { nodeId: '1', processes: 1 },
      { nodeId: '2', processes: 0 },
    ]);
    expect(after.connections.filter((c) => c.joinedBy === 'address')).toEqual([]);
  });
});

function parsedId(id: CaptureJson['manifest']['endpoints'][number]['id']) {
  const p = id.process;
  return {
    process: {
      hostId: BigInt(p.hostId),
      pid: p.pid,
      birthTime: BigInt(p.birthTime),
      generation: p.generation,
    },
    conn: id.conn,
  };
}

describe('joining captures', () => {
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  const R = proc(3n, 30);
  const ep = (
    p: typeof P,
    conn: number,
    role: Endpoint['role'],
    local: string,
    remote: string,
  ): Endpoint => {
    const [la, lp] = local.split('|');
    const [ra, rp] = remote.split('|');
    const family = la!.includes(':') ? 'inet6' : 'inet';
    return {
      id: { process: p, conn },
      role,
      family,
      type: 'stream',
      protocol: 6,
      fds: [3],
      options: [],
      drained: new Uint8Array(0),
      local: { family, address: la!, port: Number(lp) },
      remote: { family, address: ra!, port: Number(rp) },
    };
  };
  const m = (p: typeof P, endpoints: Endpoint[]): Manifest => ({
    process: p,
    executable: `exe${p.pid}`,
    pid: 0,
    checkpointPid: p.pid,
    endpoints,
  });

  test('pairs an IPv4-mapped IPv6 end with its IPv4 peer', () => {
    const join = joinCaptures([
      {
        nodeId: 1n,
        manifests: [m(P, [ep(P, 1, 'accept', '::ffff:10.0.0.1|80', '::ffff:10.0.0.2|40000')])],
      },
      { nodeId: 2n, manifests: [m(Q, [ep(Q, 7, 'connect', '10.0.0.2|40000', '10.0.0.1|80')])] },
    ]);
    expect(join.connections).toHaveLength(1);
    expect(join.connections[0]!.from.process).toBe(processKey(Q));
    expect(join.peers.get(endpointKey({ process: P, conn: 1 }))).toEqual({
      peer: { process: Q, conn: 7 },
      peerNode: 2n,
      peerExecutable: 'exe20',
    });
  });

  test('does not guess between two captured ends with the same addresses on other nodes', () => {
    const join = joinCaptures([
      { nodeId: 1n, manifests: [m(P, [ep(P, 1, 'accept', '10.0.0.1|80', '10.0.0.2|40000')])] },
      { nodeId: 2n, manifests: [m(Q, [ep(Q, 7, 'connect', '10.0.0.2|40000', '10.0.0.1|80')])] },
      { nodeId: 3n, manifests: [m(R, [ep(R, 9, 'connect', '10.0.0.2|40000', '10.0.0.1|80')])] },
    ]);
    const unmatched = join.unmatched.find((u) => u.process === processKey(P))!;
    expect(unmatched.reason).toBe("ambiguous: 2 captured endpoints have the other end's addresses");
  });

  test('prefers the end on the same node for a loopback address', () => {
    const join = joinCaptures([
      {
        nodeId: 1n,
        manifests: [
          m(P, [ep(P, 1, 'accept', '127.0.0.1|80', '127.0.0.1|40000')]),
          m(Q, [ep(Q, 7, 'connect', '127.0.0.1|40000', '127.0.0.1|80')]),
        ],
      },
      { nodeId: 3n, manifests: [m(R, [ep(R, 9, 'connect', '127.0.0.1|40000', '127.0.0.1|80')])] },
    ]);
    expect(join.peers.get(endpointKey({ process: P, conn: 1 }))?.peer).toEqual({
      process: Q,
      conn: 7,
    });
  });
});
