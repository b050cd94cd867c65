/**
 * A process waiting for its agent's reply may be stopped and continued (a debugger, a job
 * control shell, a checkpointer): Linux then ends its blocking recvmsg, which has a timeout,
 * with EINTR. The wait must go on, not fail the restore.
 */
import { expect, test } from 'bun:test';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { RunningAgent } from '../../src/agent/agent.ts';
import { endpoint, manifest, place, proc, startCluster, stopAll } from '../helpers/cluster.ts';
import { repo, writeManifest } from '../helpers/control.ts';

test('rewire exec stopped and continued while it waits still restores and runs its command', async () => {
  const agents = await startCluster([1n, 2n]);
  try {
    const [a, b] = agents as [RunningAgent, RunningAgent];
    const P = proc(1n, 10);
    const Q = proc(2n, 20);
    place(agents, 1n, [
      [P, 1n],
      [Q, 2n],
    ]);
    const marker = join(mkdtempSync(join(tmpdir(), 'rewire-signal-')), 'ran');
    const child = Bun.spawn(
      [
        process.execPath,
        join(repo, 'src/main.ts'),
        'exec',
        '--manifest',
        writeManifest(manifest(Q, [endpoint(Q, 1, 'accept', [P, 1])])),
        '--control',
        b.controlSocketPath,
        '--',
        'sh',
        '-c',
        'echo ran > "$0"',
        marker,
      ],
      { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' },
    );
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      // Q's restore is registered: the child now blocks waiting for its result.
      const deadline = Date.now() + 10_000;
      while (b.engine.restores.size === 0 && Date.now() < deadline) await Bun.sleep(10);
      expect(b.engine.restores.size).toBe(1);
      await Bun.sleep(100);
      for (let i = 0; i < 3; i++) {
        process.kill(child.pid, 'SIGSTOP');
        await Bun.sleep(50);
        process.kill(child.pid, 'SIGCONT');
        await Bun.sleep(50);
      }
      // Only now does the peer come: the restore completes after the interruptions.
      const rp = a.engine.start(manifest(P, [endpoint(P, 1, 'connect', [Q, 1])]));
      const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
      await rp.whenDone();
      rp.dispose();
      expect(stderr).not.toContain('EINTR');
      expect(code).toBe(0);
      expect(existsSync(marker)).toBe(true);
    } finally {
      clearTimeout(killer);
    }
  } finally {
    await stopAll(agents);
  }
});
