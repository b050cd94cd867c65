/**
 * Sessions between agents (src/rewire/peer-session.ts): every connection between two agents
 * is offered on one authenticated session, each data connection opens with a ticket offered
 * on it, and an agent never hands on a connection that no authenticated agent named.
 */
import { expect, test } from 'bun:test';
import { readdirSync, readlinkSync } from 'node:fs';

import { bind, close, connect, recv, send, setNonBlocking, socket } from '../../ffi/index.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import type { ProcessId } from '../../src/model/types.ts';
import type { Restore } from '../../src/rewire/restore.ts';
import { ticketOpening } from '../../src/wire/opening.ts';
import { startAgent } from '../../src/agent/agent.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { agentsPerTest, endpoint, manifest, place, proc, testConfig } from '../helpers/cluster.ts';

const agents = agentsPerTest();

/** The value of `rewire_peer_sessions_total{side}` on `agent`. */
function sessions(agent: RunningAgent, side: 'dialed' | 'accepted'): number {
  const line = agent
    .metricsText()
    .split('\n')
    .find((l) => l.startsWith(`rewire_peer_sessions_total{side="${side}"}`));
  if (!line) throw new Error(`no rewire_peer_sessions_total{side="${side}"} in the metrics`);
  return Number(line.split(' ').at(-1));
}

/**
 * Restores `n` connections between P (on `a`) and Q (on `b`): P dials the even ones, Q the
 * odd ones, so each agent dials and accepts.
 */
async function restoreMany(
  a: RunningAgent,
  b: RunningAgent,
  P: ProcessId,
  Q: ProcessId,
  n: number,
): Promise<[Restore, Restore]> {
  const conns = Array.from({ length: n }, (_, i) => i + 1);
  const role = (dials: boolean) => (dials ? 'connect' : 'accept');
  const rp = a.engine.start(
    manifest(
      P,
      conns.map((c) => endpoint(P, c, role(c % 2 === 0), [Q, c])),
    ),
  );
  const rq = b.engine.start(
    manifest(
      Q,
      conns.map((c) => endpoint(Q, c, role(c % 2 === 1), [P, c])),
    ),
  );
  await Promise.all([rp.whenDone(), rq.whenDone()]);
  return [rp, rq];
}

/**
 * The sockets this process holds. (Counting every fd would also count the event loops that
 * the agents' poller threads make as they start.)
 */
function openSockets(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // closed in the meantime
    }
  }).length;
}

/** Agents for nodes 1 and 2, with P placed on node 1 and Q on node 2. */
async function twoNodes(overrides?: Parameters<typeof agents.start>[1]) {
  const [a, b] = (await agents.start([1n, 2n], overrides)) as [RunningAgent, RunningAgent];
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  place(agents.current, 1n, [
    [P, 1n],
    [Q, 2n],
  ]);
  return { a, b, P, Q };
}

function closeAll(restores: Restore[]): void {
  for (const r of restores) r.dispose();
}

test('every connection between two agents is offered on one session each way', async () => {
  const { a, b, P, Q } = await twoNodes();
  const restores = await restoreMany(a, b, P, Q, 300);
  try {
    for (const r of restores)
      expect(r.counts()).toEqual({ pending: 0, live: 300, dead: 0, failed: 0 });
    expect([sessions(a, 'dialed'), sessions(a, 'accepted')]).toEqual([1, 1]);
    expect([sessions(b, 'dialed'), sessions(b, 'accepted')]).toEqual([1, 1]);
  } finally {
    closeAll(restores);
  }
});

test('an idle session is closed, and the next restore opens a new one', async () => {
  const { a, b, P, Q } = await twoNodes();
  const before = openSockets();
  const first = await restoreMany(a, b, P, Q, 4);
  closeAll(first);
  // Both sessions close after their idle time; the agents hold no socket for them.
  const deadline = Date.now() + 5000;
  while (openSockets() > before && Date.now() < deadline) await Bun.sleep(50);
  expect(openSockets()).toBeLessThanOrEqual(before);

  const P2 = proc(1n, 11);
  const Q2 = proc(2n, 21);
  place(agents.current, 2n, [
    [P2, 1n],
    [Q2, 2n],
  ]);
  const second = await restoreMany(a, b, P2, Q2, 4);
  try {
    for (const r of second) expect(r.counts().live).toBe(4);
    expect([sessions(a, 'dialed'), sessions(b, 'dialed')]).toEqual([2, 2]);
  } finally {
    closeAll(second);
  }
});

test('after the peer agent restarts, the next restore opens a session with the new one', async () => {
  const { a, b, P, Q } = await twoNodes();
  const first = await restoreMany(a, b, P, Q, 4);
  // The processes keep the connections they got (which use node 2's rewire port as their
  // local port on that side); node 2's agent restarts on the same port meanwhile, while node
  // 1's session with it is still open.
  const kept = first.map((r) => r.tasks[0]!.takeFd()!);
  for (const fd of kept) setNonBlocking(fd, true);
  closeAll(first);
  const port = b.peerPort;
  await b.stop();
  const b2 = await startAgent(
    testConfig(2n, { listen: { address: '127.0.0.1', port } }),
    silentLogger,
  );
  try {
    const P2 = proc(1n, 11);
    const Q2 = proc(2n, 21);
    const placement = place([a, b2], 2n, [
      [P2, 1n],
      [Q2, 2n],
    ]);
    expect(placement.nodes.find((n) => n.nodeId === 2n)?.port).toBe(port);
    const restores = await restoreMany(a, b2, P2, Q2, 4);
    try {
      for (const r of restores) expect(r.counts().live).toBe(4);
      expect(sessions(b2, 'accepted')).toBe(1);
      // Agents are out of the data path: the connection restored before the restart works.
      expect(send(kept[0]!, Uint8Array.of(42))).toBe(1);
      expect(await recvWithin(kept[1]!, 2000)).toBe('1 bytes');
    } finally {
      closeAll(restores);
    }
  } finally {
    for (const fd of kept) close(fd);
    await b2.stop();
  }
});

test('with one dial at a time, every connection still goes through', async () => {
  const { a, b, P, Q } = await twoNodes(() => ({ dialConcurrency: 1 }));
  const restores = await restoreMany(a, b, P, Q, 40);
  try {
    for (const r of restores) expect(r.counts().live).toBe(40);
  } finally {
    closeAll(restores);
  }
});

test('an acceptor never hands on a connection after its dialer stopped waiting for the answer', async () => {
  // Node 2 would hold an offer for 5 s; node 1's restore gives up after 1.5 s.
  const { a, b, P, Q } = await twoNodes(() => ({
    deadlines: { connectMs: 1000, handshakeMs: 5000, restoreMs: 8000 },
  }));
  const rp = a.engine.start(manifest(P, [endpoint(P, 1, 'connect', [Q, 1])]), 1500);
  await rp.whenDone();
  expect(rp.tasks[0]).toMatchObject({ state: 'failed', code: 'EUNKNOWN_ENDPOINT' });
  // Q registers only now, after P's agent gave up: nothing must be handed to it.
  const rq = b.engine.start(manifest(Q, [endpoint(Q, 1, 'accept', [P, 1])]), 1000);
  await rq.whenDone();
  try {
    expect(rq.tasks[0]!.state).toBe('failed');
  } finally {
    rq.dispose();
  }
});

/**
 * Opens a connection to `port` from `source` (any loopback address) and sends a data
 * connection's record with a random ticket; returns the fd and when the record went out.
 */
async function strangerTicket(
  port: number,
  source: string,
): Promise<{ fd: number; sentAt: number }> {
  const fd = socket('inet', 'stream', { nonblock: true });
  bind(fd, { family: 'inet', address: source, port: 0 });
  connect(fd, { family: 'inet', address: '127.0.0.1', port });
  const started = Date.now();
  let sent = -1;
  while (sent < 0 && Date.now() - started < 2000) {
    sent = send(fd, ticketOpening(crypto.getRandomValues(new Uint8Array(16))));
    if (sent < 0) await Bun.sleep(5);
  }
  expect(sent).toBe(20);
  return { fd, sentAt: Date.now() };
}

test('a data connection from an address without a session is reset at once', async () => {
  const [b] = (await agents.start([2n], () => ({
    deadlines: { connectMs: 1000, handshakeMs: 3000, restoreMs: 5000 },
  }))) as [RunningAgent];
  const { fd, sentAt } = await strangerTicket(b.peerPort, '127.0.0.1');
  try {
    expect(await recvWithin(fd, 2000)).toBe('ECONNRESET');
    expect(Date.now() - sentAt).toBeLessThan(1000);
  } finally {
    close(fd);
  }
});

test("an unoffered ticket from a dialing agent's address is held until the deadline; one from elsewhere is reset at once", async () => {
  const quick = { deadlines: { connectMs: 1000, handshakeMs: 800, restoreMs: 5000 } };
  const { a, b, P, Q } = await twoNodes(() => quick);
  // Node 1 dials an endpoint nobody registers on node 2: its session stays open meanwhile.
  const restore = a.engine.start(manifest(P, [endpoint(P, 1, 'connect', [Q, 99])]));
  const deadline = Date.now() + 3000;
  while (sessions(b, 'accepted') === 0 && Date.now() < deadline) await Bun.sleep(10);
  expect(sessions(b, 'accepted')).toBe(1);
  const same = await strangerTicket(b.peerPort, '127.0.0.1');
  const other = await strangerTicket(b.peerPort, '127.0.0.2');
  try {
    expect(await recvWithin(other.fd, 2000)).toBe('ECONNRESET');
    expect(Date.now() - other.sentAt).toBeLessThan(600);
    // Held while an offer might still come, then reset; never a byte back.
    expect(await recvWithin(same.fd, 5000)).toBe('ECONNRESET');
    expect(Date.now() - same.sentAt).toBeGreaterThanOrEqual(600);
  } finally {
    close(same.fd);
    close(other.fd);
    a.engine.cancel(restore);
  }
});

/** What a recv on `fd` ends with, polling (the agents run in this thread): an errno name or 'eof'. */
async function recvWithin(fd: number, ms: number): Promise<string> {
  const buf = new Uint8Array(64);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const n = recv(fd, buf);
      if (n === 0) return 'eof';
      if (n > 0) return `${n} bytes`;
    } catch (err) {
      return (err as { errnoName?: string }).errnoName ?? String(err);
    }
    await Bun.sleep(10);
  }
  return 'nothing';
}
