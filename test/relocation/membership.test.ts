/** Membership: nodes join and leave through the placement; silence is not departure. */
import { expect, test } from 'bun:test';

import type { RunningAgent } from '../../src/agent/agent.ts';
import { endpoint, manifest, nodesOf, place, proc, agentsPerTest } from '../helpers/cluster.ts';

const agents = agentsPerTest();

test('an agent that does not answer is reported unreachable, not departed', async () => {
  await agents.start([1n], () => ({
    deadlines: { connectMs: 300, handshakeMs: 500, restoreMs: 1500 },
  }));
  const [a] = agents.current as [RunningAgent];
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  // Node 2 is in the placement, but nothing listens at its address.
  const nodes = [
    ...nodesOf(agents.current),
    { nodeId: 2n, address: '127.0.0.1', port: 1, name: 'silent' },
  ];
  place(
    agents.current,
    1n,
    [
      [P, 1n],
      [Q, 2n],
    ],
    { nodes },
  );
  expect(a.peers()).toEqual([expect.objectContaining({ nodeId: '2', state: 'unknown' })]);

  const r = a.engine.start(manifest(P, [endpoint(P, 1, 'connect', [Q, 1])]));
  await r.whenDone();
  expect(r.tasks[0]).toMatchObject({ state: 'failed', code: 'EPEER_UNREACHABLE' });
  expect(r.tasks[0]!.message).toContain("node '2' at 127.0.0.1:1: connect: ECONNREFUSED");
  const [peer] = a.peers();
  expect(peer).toMatchObject({ nodeId: '2', name: 'silent', state: 'unreachable' });
  expect(peer!.lastError).toContain('ECONNREFUSED');
});

test('nodes join and leave with newer placements; an older one is refused and changes nothing', async () => {
  await agents.start([1n, 2n]);
  const [a, b] = agents.current as [RunningAgent, RunningAgent];
  place(agents.current, 5n, []);
  expect(a.peers().map((p) => [p.nodeId, p.state])).toEqual([['2', 'unknown']]);

  const joined = [
    ...nodesOf(agents.current),
    { nodeId: 3n, address: '127.0.0.1', port: 9, name: 'new' },
  ];
  place([a], 6n, [], { nodes: joined });
  expect(a.peers().map((p) => p.nodeId)).toEqual(['2', '3']);

  const left = joined.map((n) => (n.nodeId === 3n ? { ...n, departed: true } : n));
  place([a], 7n, [], { nodes: left });
  expect(a.peers().find((p) => p.nodeId === '3')!.state).toBe('departed');

  expect(() => place([a], 6n, [], { nodes: joined })).toThrow(
    "version '6' is not newer than the current '7'",
  );
  expect(a.node().placementVersion).toBe('7');
  expect(a.peers().find((p) => p.nodeId === '3')!.state).toBe('departed');
  void b;
});
