/**
 * Node takeover on loopback (agents with distinct ports in this process): the scenario of
 * takeover-scenario.ts, for machines without network namespaces.
 */
import { afterAll, expect, test } from 'bun:test';

import type { RunningAgent } from '../../src/agent/agent.ts';
import { endpointKey, processKey } from '../../src/model/ids.ts';
import { execWith, nodesOf, place, startCluster, stopAll } from '../helpers/cluster.ts';
import {
  expectTakeoverReports,
  jobReport,
  launches,
  NODE,
  P,
  placedProcesses,
} from './takeover-scenario.ts';

let agents: RunningAgent[] = [];
afterAll(() => stopAll(agents));

test("after node C leaves, every live connection continues byte-exact and C's ranks are re-homed", async () => {
  agents = await startCluster([NODE.A, NODE.B]);
  const [a, b] = agents as [RunningAgent, RunningAgent];
  const byNode = new Map<bigint, RunningAgent>([
    [NODE.A, a],
    [NODE.B, b],
  ]);
  const nodes = [
    ...nodesOf(agents),
    { nodeId: NODE.C, address: '127.0.0.1', port: 9, departed: true },
  ];
  place(agents, 1n, placedProcesses(), { nodes });

  const runs = launches().map(async (l) => {
    const agent = byNode.get(l.node)!;
    const result = await execWith(agent.controlSocketPath, l.manifest, l.command, {
      execFlags: l.execFlags,
    });
    return [l.name, jobReport(l.name, result), result.stderr] as const;
  });
  const reports = Object.fromEntries(
    (await Promise.all(runs)).map(([n, r, err]) => [n, { ...r, stderr: err }]),
  );

  expectTakeoverReports(reports);

  const r3Daemon = a
    .connections({ process: processKey(P.r3) })
    .find((c) => c.endpoint === endpointKey({ process: P.r3, conn: 1 }))!;
  expect(r3Daemon).toMatchObject({
    how: 'rehomed',
    sameNode: true,
    localNode: String(NODE.A),
    localBirthNode: String(NODE.C),
  });
  expect(r3Daemon.peer).toStartWith(`${processKey(P.dA)}#`);
  const r4r3 = b
    .connections({ process: processKey(P.r4) })
    .find((c) => c.endpoint === endpointKey({ process: P.r4, conn: 3 }))!;
  expect(r4r3).toMatchObject({
    how: 'remote',
    peerNode: String(NODE.A),
    peerBirthNode: String(NODE.C),
    sameNode: false,
  });

  // The head daemon's host table lists B (through dB's connection) and no longer C.
  const head = a.hosts().find((h) => h.process === processKey(P.dA))!;
  expect(head.entries.map((e) => e.remoteNode)).toEqual([String(NODE.B)]);
  expect(head.entries[0]).toMatchObject({
    fd: 21,
    peer: endpointKey({ process: P.dB, conn: 1 }),
    peerBirthNode: String(NODE.B),
  });
});
