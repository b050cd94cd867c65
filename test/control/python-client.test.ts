/**
 * The Python client in test/fixtures was written from docs/control-protocol.md alone, with its
 * own protobuf codec: if it restores through a real agent and gets every fd live and usable,
 * the document says enough.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';

import type { RunningAgent } from '../../src/agent/agent.ts';
import { endpoint, manifest, nodesOf, place, startCluster, stopAll } from '../helpers/cluster.ts';
import { clientReport, runPythonClient, writeManifest } from '../helpers/control.ts';

const text = (s: string) => new TextEncoder().encode(s);

let agents: RunningAgent[];
let agent: RunningAgent;

beforeAll(async () => {
  agents = await startCluster([5n]);
  agent = agents[0]!;
});

afterAll(() => stopAll(agents));

test('a client written from the protocol document restores every endpoint with its fd', async () => {
  // A host id above 2^53 checks that 64-bit ids survive both codecs.
  const p = { hostId: 18446744073709551557n, pid: 4100, birthTime: 1700004100n, generation: 2 };
  const gone = { hostId: 99n, pid: 9900, birthTime: 1n, generation: 1 };
  place(agents, 1n, [[gone, 99n]], {
    nodes: [...nodesOf(agents), { nodeId: 99n, address: '127.0.0.1', port: 9, departed: true }],
  });
  const selfOwned = { statusFlags: 0, owner: p.pid, signal: 0, cloexec: false };
  const m = manifest(p, [
    endpoint(p, 1, 'connect', [p, 2], { fcntl: selfOwned }),
    endpoint(p, 2, 'accept', [p, 1], { fds: [12, 20] }),
    endpoint(p, 3, 'listen', undefined, {
      local: { family: 'inet', address: '127.0.0.1', port: 0 },
      backlog: 8,
    }),
    endpoint(p, 4, 'connect', [gone, 1], { drained: text('left over') }),
  ]);

  const run = await runPythonClient(agent, writeManifest(m), ['--exchange']);
  const report = clientReport(run);

  expect(run.code).toBe(0);
  expect(report.done).toMatchObject({ code: '', live: 3, dead: 1, failed: 0 });
  expect(report.fd_count).toBe(4);
  expect(report.unclaimed_fds).toBe(0);
  const byConn = new Map(report.endpoints.map((e) => [e.conn, e]));
  expect(report.endpoints.every((e) => e.fd_arrived && e.attached === 1)).toBe(true);
  const at = (conn: number) => {
    const e = byConn.get(conn);
    if (!e) throw new Error(`no result for connection ${conn}`);
    return e;
  };
  const [c, a, l, d] = [at(1), at(2), at(3), at(4)];
  expect(c.id).toBe(`${p.hostId}:${p.pid}:${p.birthTime}:${p.generation}#1`);
  expect([c.status, c.how, c.fds, c.peer]).toEqual(['live', 'local-pair', [11], a.id]);
  expect([a.status, a.how, a.fds]).toEqual(['live', 'local-pair', [12, 20]]);
  expect(c.socket).toMatchObject({ family: 'AF_INET', type: 'SOCK_STREAM' });
  expect(c.socket!.peername).toEqual(a.socket!.sockname);
  expect(c.socket!.owner).toBe(report.pid);
  expect(report.exchange).toEqual({ pairs: 1, ok: true, errors: [] });
  expect([l.status, l.how, l.socket?.family]).toEqual(['live', 'listen', 'AF_INET']);
  expect((l.socket!.sockname as [string, number])[0]).toBe('127.0.0.1');
  expect([d.status, d.how, d.code, d.socket?.family]).toEqual([
    'dead',
    'dead',
    'EPEER_GONE',
    'AF_UNIX',
  ]);
  expect(Buffer.from(d.dead_bytes!, 'base64').toString()).toBe('left over');
});
