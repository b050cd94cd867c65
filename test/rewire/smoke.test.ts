import { afterAll, expect, test } from 'bun:test';

import { bind, close, getPeerName, recv, send, setNonBlocking, socket } from '../../ffi/index.ts';
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

/** Why IPv6 loopback cannot be used here, or undefined when it can. */
function noIPv6(): string | undefined {
  try {
    const fd = socket('inet6', 'stream');
    try {
      bind(fd, { family: 'inet6', address: '::1', port: 0 });
    } finally {
      close(fd);
    }
    return undefined;
  } catch (err) {
    return `IPv6 loopback is not available: ${(err as Error).message}`;
  }
}
const ipv6Missing = noIPv6();
if (ipv6Missing) console.warn(`skip: agents on IPv6: ${ipv6Missing}`);

test.skipIf(ipv6Missing !== undefined)(
  'agents that listen on IPv6 restore a connection between them',
  async () => {
    const v6 = { address: '::1', port: 0 };
    const agents = await startCluster([303n, 404n], () => ({ listen: v6, advertise: v6 }));
    try {
      const [a, b] = agents as [(typeof agents)[0], (typeof agents)[0]];
      const p1 = proc(303n, 3000);
      const p2 = proc(404n, 4000);
      const nodes = agents.map((x) => ({
        nodeId: BigInt(x.node().nodeId),
        address: '::1',
        port: x.peerPort,
      }));
      place(
        agents,
        1n,
        [
          [p1, 303n],
          [p2, 404n],
        ],
        { nodes },
      );
      const ra = a.engine.start(
        manifest(p1, [
          endpoint(p1, 1, 'connect', [p2, 1], { family: 'inet6', drained: enc('six') }),
        ]),
      );
      const rb = b.engine.start(
        manifest(p2, [endpoint(p2, 1, 'accept', [p1, 1], { family: 'inet6' })]),
      );
      await Promise.all([ra.whenDone(), rb.whenDone()]);
      expect([ra.tasks[0]!.state, rb.tasks[0]!.state]).toEqual(['live', 'live']);
      const fa = ra.tasks[0]!.takeFd()!;
      const fb = rb.tasks[0]!.takeFd()!;
      try {
        expect(getPeerName(fa)).toMatchObject({
          family: 'inet6',
          address: '::1',
          port: b.peerPort,
        });
        const buf = new Uint8Array(16);
        expect(new TextDecoder().decode(buf.subarray(0, recv(fa, buf)))).toBe('six');
      } finally {
        close(fa);
        close(fb);
      }
    } finally {
      await stopAll(agents);
    }
  },
);
