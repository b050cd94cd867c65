/**
 * What each side sees when a restore cannot go through: wrong cluster key, unknown endpoint,
 * an unexplained peer change, differing placements, a peer agent killed mid-restore. Never an
 * abort, never a hang: every endpoint settles with a code and a message before its deadline.
 */
import { expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { close, connect, recv, send, socket } from '../../ffi/index.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import { decodePeerFrame, encodePeerFrame } from '../../src/model/codec.ts';
import { placementToJson } from '../../src/model/schema.ts';
import type { Placement, ProcessId } from '../../src/model/types.ts';
import type { Restore } from '../../src/rewire/restore.ts';
import { PROTOCOL_VERSION } from '../../src/wire/auth.ts';
import { frame } from '../../src/wire/framer.ts';
import { sessionOpening } from '../../src/wire/opening.ts';
import {
  clusterKey,
  endpoint,
  manifest,
  nodesOf,
  place,
  proc,
  agentsPerTest,
} from '../helpers/cluster.ts';

const agents = agentsPerTest();
const cluster = agents.start;

const quick = { deadlines: { connectMs: 1000, handshakeMs: 700, restoreMs: 2500 } };

/**
 * Restores a pair across agents `a` (the connecting process) and `b` (the accepting one, whose
 * endpoint recorded `recordedPeer` as its peer) and waits for both restores to end.
 */
async function restorePair(
  a: RunningAgent,
  b: RunningAgent,
  connecting: ProcessId,
  accepting: ProcessId,
  recordedPeer = connecting,
): Promise<[Restore, Restore]> {
  const rb = b.engine.start(
    manifest(accepting, [endpoint(accepting, 1, 'accept', [recordedPeer, 1])]),
  );
  const ra = a.engine.start(
    manifest(connecting, [endpoint(connecting, 1, 'connect', [accepting, 1])]),
  );
  await Promise.all([ra.whenDone(), rb.whenDone()]);
  return [ra, rb];
}

test('a wrong cluster key fails the dialer with EAUTH and leaves the acceptor waiting until its deadline', async () => {
  const [a, b] = (await cluster([1n, 2n], (id) => ({
    ...quick,
    clusterKey: new Uint8Array(32).fill(id === 1n ? 1 : 2),
  }))) as [RunningAgent, RunningAgent];
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  place(agents.current, 1n, [
    [P, 1n],
    [Q, 2n],
  ]);
  const [ra, rb] = await restorePair(a, b, P, Q);
  expect(ra.tasks[0]).toMatchObject({ state: 'failed', code: 'EAUTH' });
  expect(ra.tasks[0]!.message).toContain("does not hold this cluster's key");
  expect(rb.tasks[0]).toMatchObject({ state: 'failed', code: 'EDEADLINE' });
  expect(rb.tasks[0]!.message).toContain(`No connection from peer endpoint '1:10:1700000010:1#1'`);
});

test('a peer that fails authentication learns nothing: the acceptor resets without a word', async () => {
  const [b] = (await cluster([2n])) as [RunningAgent];
  const fd = socket('inet', 'stream', { nonblock: true });
  try {
    connect(fd, { family: 'inet', address: '127.0.0.1', port: b.peerPort });
    await until(() => send(fd, new Uint8Array(0)) === 0);
    const hello = frame(
      encodePeerFrame({
        kind: 'hello',
        hello: { version: PROTOCOL_VERSION, nodeId: 9n, nonce: new Uint8Array(32) },
      }),
    );
    send(fd, Uint8Array.from([...sessionOpening(), ...hello]));
    const buf = new Uint8Array(4096);
    const n = await recvSoon(fd, buf);
    expect(decodePeerFrame(buf.subarray(4, n)).kind).toBe('challenge');
    // A wrong proof, then an offer naming an endpoint: neither is answered.
    send(
      fd,
      frame(encodePeerFrame({ kind: 'join', join: { proof: new Uint8Array(32).fill(0xee) } })),
    );
    const offer = {
      ticket: new Uint8Array(16),
      from: { process: proc(9n, 1), conn: 1 },
      to: { process: proc(2n, 20), conn: 1 },
      placementVersion: 0n,
      drained: new Uint8Array(0),
      waitMs: 1000,
    };
    send(fd, frame(encodePeerFrame({ kind: 'offers', offers: [offer] })));
    // No Joined frame, no byte: the connection is reset.
    const answer = await recvSoon(fd, buf).catch(
      (err) => (err as { errnoName?: string }).errnoName,
    );
    expect(answer).toBe('ECONNRESET');
  } finally {
    close(fd);
  }
});

test('an endpoint nobody registers is refused with EUNKNOWN_ENDPOINT', async () => {
  const [a] = (await cluster([1n, 2n], () => quick)) as [RunningAgent, RunningAgent];
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  place(agents.current, 1n, [
    [P, 1n],
    [Q, 2n],
  ]);
  const ra = a.engine.start(manifest(P, [endpoint(P, 1, 'connect', [Q, 99])]));
  await ra.whenDone();
  expect(ra.tasks[0]).toMatchObject({ state: 'failed', code: 'EUNKNOWN_ENDPOINT' });
  expect(ra.tasks[0]!.message).toContain(`endpoint '2:20:1700000020:1#99'`);
});

test('a peer that is not the recorded one is refused unless the placement explains the change', async () => {
  const [a, b] = (await cluster([1n, 2n], () => quick)) as [RunningAgent, RunningAgent];
  const P = proc(1n, 10);
  const R = proc(1n, 11);
  const Q = proc(2n, 20);
  place(agents.current, 1n, [
    [P, 1n],
    [R, 1n],
    [Q, 2n],
  ]);
  const [ra, rb] = await restorePair(a, b, R, Q, P);
  // Both sides see the refusal: the acceptor's endpoint ends with it at its deadline.
  expect(ra.tasks[0]).toMatchObject({ state: 'failed', code: 'EPEER_CHANGED' });
  expect(rb.tasks[0]).toMatchObject({ state: 'failed', code: 'EPEER_CHANGED' });
  expect(rb.tasks[0]!.message).toContain(
    "was connected to '1:10:1700000010:1#1', not '1:11:1700000011:1#1'",
  );

  // The same change, explained: R replaced P (restarted under a new identity).
  place(
    agents.current,
    2n,
    [
      [R, 1n],
      [Q, 2n],
    ],
    { replacements: [{ old: P, new: R }] },
  );
  b.engine.forget(rb);
  a.engine.forget(ra);
  const [ra2, rb2] = await restorePair(a, b, R, Q, P);
  expect(ra2.tasks[0]!.state).toBe('live');
  expect(rb2.tasks[0]!.state).toBe('live');
  expect(b.connections()[0]!.peer).toBe('1:11:1700000011:1#1');
});

test('agents holding different placement versions find out instead of disagreeing', async () => {
  const [a, b] = (await cluster([1n, 2n], () => quick)) as [RunningAgent, RunningAgent];
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  const placement: Placement = {
    version: 5n,
    nodes: nodesOf(agents.current),
    processes: [
      { process: P, nodeId: 1n },
      { process: Q, nodeId: 2n },
    ],
    replacements: [],
  };
  a.setPlacement(placement);
  b.setPlacement({ ...placement, version: 4n });
  const [ra] = await restorePair(a, b, P, Q);
  expect(ra.tasks[0]).toMatchObject({ state: 'failed', code: 'EPLACEMENT_MISMATCH' });
  expect(ra.tasks[0]!.message).toContain("placement version '5', this node holds '4'");
});

test('a connection from a node the placement does not put the process on is refused', async () => {
  const [a, b] = (await cluster([1n, 2n, 3n], () => quick)) as [
    RunningAgent,
    RunningAgent,
    RunningAgent,
  ];
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  // Agent 1 restores P, but the placement it gave agent 2 says P runs on node 3.
  const base: Placement = {
    version: 7n,
    nodes: nodesOf(agents.current),
    processes: [{ process: Q, nodeId: 2n }],
    replacements: [],
  };
  a.setPlacement({ ...base, processes: [...base.processes, { process: P, nodeId: 1n }] });
  b.setPlacement({ ...base, processes: [...base.processes, { process: P, nodeId: 3n }] });
  const [ra] = await restorePair(a, b, P, Q);
  expect(ra.tasks[0]).toMatchObject({ state: 'failed', code: 'EPEER_NOT_PLACED' });
  expect(ra.tasks[0]!.message).toContain("on node '3', but it connected from node '1'");
});

test('a peer agent killed mid-restore fails the endpoint at once with EPEER_AGENT_LOST', async () => {
  const [a] = (await cluster([1n], () => ({
    deadlines: { connectMs: 1000, handshakeMs: 20_000, restoreMs: 20_000 },
  }))) as [RunningAgent];
  const dir = mkdtempSync(join(tmpdir(), 'rewire-kill-'));
  const port = await freePort();
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  const placement: Placement = {
    version: 1n,
    nodes: [...nodesOf(agents.current), { nodeId: 2n, address: '127.0.0.1', port }],
    processes: [
      { process: P, nodeId: 1n },
      { process: Q, nodeId: 2n },
    ],
    replacements: [],
  };
  writeFileSync(join(dir, 'placement.json'), JSON.stringify(placementToJson(placement)));
  a.setPlacement(placement);
  const peer = Bun.spawn(
    [
      process.execPath,
      join(import.meta.dir, '../../bench/agent-process.ts'),
      '2',
      String(port),
      join(dir, 'run'),
      join(dir, 'placement.json'),
      Buffer.from(clusterKey).toString('hex'),
    ],
    { stdout: 'pipe', stderr: 'inherit' },
  );
  try {
    const reader = peer.stdout.getReader();
    while (!new TextDecoder().decode((await reader.read()).value).includes('ready'));
    // Q never registers on node 2, so its agent holds our connection as an early handshake.
    const ra = a.engine.start(manifest(P, [endpoint(P, 1, 'connect', [Q, 1])]));
    await Bun.sleep(300);
    expect(ra.tasks[0]!.state).toBe('pending');
    const killedAt = Date.now();
    peer.kill('SIGKILL');
    await ra.whenDone();
    expect(Date.now() - killedAt).toBeLessThan(5000);
    expect(ra.tasks[0]).toMatchObject({ state: 'failed', code: 'EPEER_AGENT_LOST' });
  } finally {
    peer.kill('SIGKILL');
    await peer.exited;
  }
});

async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

/** recv on a non-blocking fd, polling (the agent runs in this thread) until a deadline. */
async function recvSoon(fd: number, buf: Uint8Array): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const n = recv(fd, buf);
    if (n >= 0) return n;
    if (Date.now() > deadline) throw new Error(`nothing to read on fd ${fd} within 5 s`);
    await Bun.sleep(5);
  }
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await Bun.sleep(5);
  }
}

test('garbage and oversized frames from a peer are dropped, and the agent goes on restoring', async () => {
  const [a, b] = (await cluster([1n, 2n], () => quick)) as [RunningAgent, RunningAgent];
  const session = (...bytes: Uint8Array[]) =>
    Uint8Array.from([...sessionOpening(), ...bytes.flatMap((b) => [...b])]);
  for (const bytes of [
    new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'),
    Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
    frame(Uint8Array.from([0x0a, 0x99, 0x01])),
    // A session whose first frame is not a protobuf message.
    session(frame(Uint8Array.from([0x0a, 0x99, 0x01]))),
    // A session whose first frame announces 1 MiB: more than a stranger may send before it
    // has proved the key, though less than maxFrameBytes. Refused at its length.
    session(Uint8Array.from([0x00, 0x10, 0x00, 0x00, 1, 2, 3])),
  ]) {
    const fd = socket('inet', 'stream', { nonblock: true });
    try {
      connect(fd, { family: 'inet', address: '127.0.0.1', port: b.peerPort });
      await until(() => send(fd, new Uint8Array(0)) === 0);
      send(fd, bytes);
      const sentAt = Date.now();
      const buf = new Uint8Array(4096);
      const answer = await recvSoon(fd, buf).catch(
        (err) => (err as { errnoName?: string }).errnoName ?? String(err),
      );
      // Closed or reset, and never a frame back; at once, not at the handshake deadline.
      expect([0, 'ECONNRESET']).toContain(answer);
      expect(Date.now() - sentAt).toBeLessThan(quick.deadlines.handshakeMs / 2);
    } finally {
      close(fd);
    }
  }
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  place(agents.current, 1n, [
    [P, 1n],
    [Q, 2n],
  ]);
  const [ra, rb] = await restorePair(a, b, P, Q);
  expect([ra.tasks[0]!.state, rb.tasks[0]!.state]).toEqual(['live', 'live']);
});

test('an agent at the address the placement gives for another node is found out, not trusted', async () => {
  const [a, c] = (await cluster([1n, 3n], () => quick)) as [RunningAgent, RunningAgent];
  const P = proc(1n, 10);
  const Q = proc(2n, 20);
  // The placement says node 2 listens where node 3's agent does.
  const placement: Placement = {
    version: 1n,
    nodes: [
      { nodeId: 1n, address: '127.0.0.1', port: a.peerPort },
      { nodeId: 2n, address: '127.0.0.1', port: c.peerPort },
    ],
    processes: [
      { process: P, nodeId: 1n },
      { process: Q, nodeId: 2n },
    ],
    replacements: [],
  };
  a.setPlacement(placement);
  const ra = a.engine.start(manifest(P, [endpoint(P, 1, 'connect', [Q, 1])]));
  await ra.whenDone();
  expect(ra.tasks[0]).toMatchObject({ state: 'failed', code: 'ENODE_MISMATCH' });
  expect(ra.tasks[0]!.message).toContain(
    `is node '3', not node '2': the placement's address for node '2' is wrong`,
  );
});
