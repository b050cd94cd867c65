/**
 * A restore started through the API (an orchestrator restoring ahead of the process) is
 * claimed by the process over the control socket: the fds the agent held are handed over,
 * and an unclaimed restore gives its fds back at its deadline.
 */
import { expect, test } from 'bun:test';

import type { RunningAgent } from '../../src/agent/agent.ts';
import { agentsPerTest, endpoint, manifest, openFdCount, proc } from '../helpers/cluster.ts';
import { clientReport, runPythonClient, writeManifest } from '../helpers/control.ts';

const agents = agentsPerTest();

function pairManifest(pid: number) {
  const P = proc(9n, pid);
  return manifest(P, [
    endpoint(P, 1, 'connect', [P, 2], { fds: [40] }),
    endpoint(P, 2, 'accept', [P, 1], { fds: [41] }),
  ]);
}

test('a process claims the fds of a restore the API started for it', async () => {
  const [a] = (await agents.start([1n])) as [RunningAgent];
  const m = pairManifest(501);
  const started = a.startRestore(m);
  await Bun.sleep(0);
  expect(a.restore(started.id).state).toBe('done');

  const report = clientReport(await runPythonClient(a, writeManifest(m), ['--exchange']));
  expect(report.done.restoreId).toBe(started.id);
  expect(report.endpoints.map((e) => [e.status, e.fd_arrived])).toEqual([
    ['live', true],
    ['live', true],
  ]);
  expect(report.exchange).toMatchObject({ pairs: 1, ok: true });
});

test('an unclaimed restore gives its fds back at its deadline', async () => {
  const [a] = (await agents.start([1n], () => ({
    deadlines: { connectMs: 500, handshakeMs: 500, restoreMs: 300 },
  }))) as [RunningAgent];
  const dropped = async (id: string) => {
    const deadline = Date.now() + 5000;
    while (a.restores().some((r) => r.id === id)) {
      if (Date.now() > deadline)
        throw new Error('the unclaimed restore was not dropped within 5 s');
      await Bun.sleep(20);
    }
  };
  // A first round opens whatever the runtime opens lazily (timers and the like).
  await dropped(a.startRestore(pairManifest(502)).id);
  const before = openFdCount();
  const started = a.startRestore(pairManifest(503));
  expect(openFdCount()).toBeGreaterThanOrEqual(before + 2);
  await dropped(started.id);
  expect(openFdCount()).toBe(before);
});
