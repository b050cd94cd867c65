/**
 * Bytes a process had sent that its peer had not received at checkpoint (a send queue copied
 * in TCP repair mode) reach the peer after the peer's own drained bytes and before anything new.
 */
import { expect, test } from 'bun:test';

import { close, recv, send, setNonBlocking } from '../../ffi/index.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import { agentsPerTest, endpoint, manifest, place, proc } from '../helpers/cluster.ts';

const agents = agentsPerTest();
const enc = (s: string) => new TextEncoder().encode(s);

async function readExactly(fd: number, n: number): Promise<string> {
  const buf = new Uint8Array(n);
  let got = 0;
  const deadline = Date.now() + 5000;
  while (got < n) {
    const r = recv(fd, buf.subarray(got));
    if (r === 0) throw new Error(`end of file after ${got} bytes`);
    if (r > 0) got += r;
    else if (Date.now() > deadline) throw new Error(`only ${got} of ${n} bytes within 5 s`);
    else await Bun.sleep(2);
  }
  return new TextDecoder().decode(buf);
}

for (const where of ['across nodes', 'on one node'] as const) {
  test(`unsent bytes follow the peer's drained bytes, ${where}`, async () => {
    const [a, b] = (await agents.start([1n, 2n])) as [RunningAgent, RunningAgent];
    const P = proc(1n, 10);
    const Q = proc(2n, 20);
    const qNode = where === 'across nodes' ? 2n : 1n;
    place(agents.current, 1n, [
      [P, 1n],
      [Q, qNode],
    ]);
    const pEnd = endpoint(P, 1, 'connect', [Q, 1], {
      drained: enc('P-had;'),
      unsent: enc('P-sent;'),
    });
    const qEnd = endpoint(Q, 1, 'accept', [P, 1], {
      drained: enc('Q-had;'),
      unsent: enc('Q-sent;'),
    });
    const rq = (qNode === 2n ? b : a).engine.start(manifest(Q, [qEnd]));
    const rp = a.engine.start(manifest(P, [pEnd]));
    await Promise.all([rp.whenDone(), rq.whenDone()]);
    const fp = rp.tasks[0]!.takeFd()!;
    const fq = rq.tasks[0]!.takeFd()!;
    try {
      setNonBlocking(fp, true);
      setNonBlocking(fq, true);
      send(fq, enc('Q-new'));
      send(fp, enc('P-new'));
      expect(await readExactly(fp, 'P-had;Q-sent;Q-new'.length)).toBe('P-had;Q-sent;Q-new');
      expect(await readExactly(fq, 'Q-had;P-sent;P-new'.length)).toBe('Q-had;P-sent;P-new');
    } finally {
      close(fp);
      close(fq);
    }
  });
}
