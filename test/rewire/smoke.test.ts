import { afterAll, expect, test } from 'bun:test';

import { close, recv, send, setNonBlocking } from '../../ffi/index.ts';
import { endpoint, manifest, place, proc, startCluster, stopAll } from '../helpers/cluster.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

test('restores a connection across two agents with drained bytes first', async () => {
  const agents = await startCluster([101n, 202n]);
  try {
    const [a, b] = agents as [(typeof agents)[0], (typeof agents)[0]];
    const p1 = proc(101n, 1000);
    const p2 = proc(202n, 2000);
    place(agents, 1n, [
      [p1, 101n],
      [p2, 202n],
    ]);
    const ra = a.engine.start(
      manifest(p1, [endpoint(p1, 1, 'connect', [p2, 1], { drained: enc('to-p1') })]),
    );
    const rb = b.engine.start(
      manifest(p2, [endpoint(p2, 1, 'accept', [p1, 1], { drained: enc('to-p2') })]),
    );
    await Promise.all([ra.whenDone(), rb.whenDone()]);
    const ta = ra.tasks[0]!;
    const tb = rb.tasks[0]!;
    expect([ta.state, ta.code, ta.message]).toEqual(['live', undefined, undefined]);
    expect(tb.state).toBe('live');
    const fa = ta.takeFd()!;
    const fb = tb.takeFd()!;
    setNonBlocking(fa, false);
    setNonBlocking(fb, false);
    send(fb, enc('new'));
    const buf = new Uint8Array(64);
    let got = '';
    while (got.length < 8) got += dec(buf.subarray(0, recv(fa, buf)));
    expect(got).toBe('to-p1new');
    send(fa, enc('x'));
    got = '';
    while (got.length < 6) got += dec(buf.subarray(0, recv(fb, buf)));
    expect(got).toBe('to-p2x');
    close(fa);
    close(fb);
  } finally {
    await stopAll(agents);
  }
});
