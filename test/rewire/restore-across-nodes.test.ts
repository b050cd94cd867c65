/**
 * Restores with three agents (loopback, own ports and node ids) and independent Python peers
 * started through `rewire exec`: every byte of drained data and of a sequence-numbered stream
 * is checked in both directions, and every option and fcntl value is read back by the peer.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { RunningAgent } from '../../src/agent/agent.ts';
import {
  endpoint,
  execPeer,
  intOption,
  lingerOption,
  manifest,
  openFdCount,
  peerReport,
  place,
  proc,
  startCluster,
  stopAll,
} from '../helpers/cluster.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (s: string) => new TextEncoder().encode(s);

let agents: RunningAgent[] = [];
let fdsBefore = 0;

beforeAll(async () => {
  fdsBefore = openFdCount();
  agents = await startCluster([11n, 22n, 33n], (id) =>
    id === 33n ? { localPolicy: 'unix-when-local' } : {},
  );
});

afterAll(async () => {
  await stopAll(agents);
});

const recordedOptions = [
  intOption('TCP_NODELAY', 1),
  intOption('SO_KEEPALIVE', 1),
  intOption('SO_SNDBUF', 262144),
  intOption('SO_RCVBUF', 131072),
  intOption('TCP_KEEPIDLE', 45),
  intOption('TCP_KEEPINTVL', 7),
  intOption('TCP_KEEPCNT', 3),
  intOption('TCP_USER_TIMEOUT', 12345),
  intOption('SO_REUSEADDR', 1),
  lingerOption(true, 9),
];

describe('across nodes', () => {
  test('a relocated process and its peer continue a byte-exact stream with their options', async () => {
    const [a, b, c] = agents as [RunningAgent, RunningAgent, RunningAgent];
    // P was born on node 11 and now runs on node 22 (relocated); Q stays on node 33.
    const P = proc(11n, 4101);
    const Q = proc(33n, 4202);
    place(agents, 10n, [
      [P, 22n],
      [Q, 33n],
    ]);
    const pDrained = bytes('bytes P had not read at checkpoint\n');
    const qDrained = bytes('Q had these in its receive queue\n');
    const fcntl = { statusFlags: 0o4000, owner: 4101, signal: 23, cloexec: false };
    const mp = manifest(P, [
      endpoint(P, 1, 'connect', [Q, 1], {
        fds: [7],
        options: recordedOptions,
        drained: pDrained,
        fcntl,
      }),
    ]);
    const mq = manifest(Q, [
      endpoint(Q, 1, 'accept', [P, 1], {
        fds: [9],
        options: recordedOptions,
        drained: qDrained,
        fcntl: { ...fcntl, owner: 4202 },
      }),
    ]);
    const [rp, rq] = await Promise.all([
      execPeer(b, mp, [
        '--fd',
        '7',
        '--drained',
        `7:${hex(pDrained)}`,
        '--tag',
        'p',
        '--peer-tag',
        'q',
        '--count',
        '20000',
      ]),
      execPeer(c, mq, [
        '--fd',
        '9',
        '--drained',
        `9:${hex(qDrained)}`,
        '--tag',
        'q',
        '--peer-tag',
        'p',
        '--count',
        '20000',
      ]),
    ]);
    const p = peerReport(rp);
    const q = peerReport(rq);
    for (const [report, fd] of [
      [p, '7'],
      [q, '9'],
    ] as const) {
      const entry = report.fds[fd]!;
      expect(entry.drained_ok).toBe(true);
      expect(entry.stream_bytes).toBeGreaterThan(100_000);
      const o = entry.state.options;
      expect(entry.state.family).toBe('AF_INET');
      expect([o.TCP_NODELAY, o.SO_KEEPALIVE, o.SO_SNDBUF, o.SO_RCVBUF]).toEqual([
        1, 1, 262144, 131072,
      ]);
      expect([o.TCP_KEEPIDLE, o.TCP_KEEPINTVL, o.TCP_KEEPCNT, o.TCP_USER_TIMEOUT]).toEqual([
        45, 7, 3, 12345,
      ]);
      expect(o.SO_LINGER).toEqual([1, 9]);
      expect(entry.state.nonblock).toBe(true);
      expect(entry.state.signal).toBe(23);
      expect(entry.state.cloexec).toBe(false);
      // The owner was the process itself at checkpoint: it follows the process to its new pid.
      expect(entry.state.owner).toBe(report.pid);
    }
    const conn = b.connections({
      process: `${P.hostId}:${P.pid}:${P.birthTime}:${P.generation}`,
    })[0]!;
    expect(conn).toMatchObject({
      how: 'remote',
      localNode: '22',
      peerNode: '33',
      localBirthNode: '11',
      sameNode: false,
    });
    void a;
  });

  test('drained data larger than the socket buffers arrives first, in both directions', async () => {
    const [, b, c] = agents as [RunningAgent, RunningAgent, RunningAgent];
    const P = proc(22n, 5101);
    const Q = proc(33n, 5202);
    place(agents, 11n, [
      [P, 22n],
      [Q, 33n],
    ]);
    const big = (seed: number) =>
      Uint8Array.from({ length: 1_500_000 }, (_, i) => (i * 31 + seed) & 0xff);
    const pDrained = big(1);
    const qDrained = big(2);
    const dir = mkdtempSync(join(tmpdir(), 'rewire-big-'));
    writeFileSync(join(dir, 'p'), pDrained);
    writeFileSync(join(dir, 'q'), qDrained);
    const mp = manifest(P, [endpoint(P, 1, 'connect', [Q, 1], { fds: [5], drained: pDrained })]);
    const mq = manifest(Q, [endpoint(Q, 1, 'accept', [P, 1], { fds: [6], drained: qDrained })]);
    const [rp, rq] = await Promise.all([
      execPeer(b, mp, [
        '--fd',
        '5',
        '--drained-file',
        `5:${join(dir, 'p')}`,
        '--tag',
        'p',
        '--peer-tag',
        'q',
      ]),
      execPeer(c, mq, [
        '--fd',
        '6',
        '--drained-file',
        `6:${join(dir, 'q')}`,
        '--tag',
        'q',
        '--peer-tag',
        'p',
      ]),
    ]);
    expect(peerReport(rp).fds['5']!.drained_ok).toBe(true);
    expect(peerReport(rq).fds['6']!.drained_ok).toBe(true);
  });
});

describe('same node', () => {
  test('keep-family pairs both ends over loopback TCP with drained bytes first', async () => {
    const [a] = agents as [RunningAgent];
    const P = proc(11n, 6101);
    const Q = proc(22n, 6202);
    place(agents, 12n, [
      [P, 11n],
      [Q, 11n],
    ]);
    const pDrained = bytes('p-local');
    const qDrained = bytes('q-local');
    const [rp, rq] = await Promise.all([
      execPeer(
        a,
        manifest(P, [
          endpoint(P, 1, 'connect', [Q, 1], {
            fds: [5],
            drained: pDrained,
            options: recordedOptions,
          }),
        ]),
        ['--fd', '5', '--drained', `5:${hex(pDrained)}`, '--tag', 'p', '--peer-tag', 'q'],
      ),
      execPeer(
        a,
        manifest(Q, [endpoint(Q, 1, 'accept', [P, 1], { fds: [6], drained: qDrained })]),
        ['--fd', '6', '--drained', `6:${hex(qDrained)}`, '--tag', 'q', '--peer-tag', 'p'],
      ),
    ]);
    const p = peerReport(rp).fds['5']!;
    expect(p.drained_ok).toBe(true);
    expect(p.state.family).toBe('AF_INET');
    expect(p.state.options.TCP_KEEPIDLE).toBe(45);
    expect(peerReport(rq).fds['6']!.drained_ok).toBe(true);
    const conn = a.connections().find((x) => x.process.endsWith(':6101:1700006101:1'))!;
    expect(conn).toMatchObject({ how: 'local-pair', sameNode: true });
  });

  test('unix-when-local pairs both ends with an AF_UNIX socketpair', async () => {
    const [, , c] = agents as [RunningAgent, RunningAgent, RunningAgent];
    const P = proc(11n, 7101);
    const Q = proc(22n, 7202);
    place(agents, 13n, [
      [P, 33n],
      [Q, 33n],
    ]);
    const pDrained = bytes('p-unix');
    const [rp, rq] = await Promise.all([
      execPeer(
        c,
        manifest(P, [endpoint(P, 1, 'connect', [Q, 1], { fds: [5], drained: pDrained })]),
        ['--fd', '5', '--drained', `5:${hex(pDrained)}`, '--tag', 'p', '--peer-tag', 'q'],
      ),
      execPeer(c, manifest(Q, [endpoint(Q, 1, 'accept', [P, 1], { fds: [6] })]), [
        '--fd',
        '6',
        '--tag',
        'q',
        '--peer-tag',
        'p',
      ]),
    ]);
    const p = peerReport(rp).fds['5']!;
    expect(p.state.family).toBe('AF_UNIX');
    expect(p.drained_ok).toBe(true);
    expect(peerReport(rq).fds['6']!.stream_bytes).toBeGreaterThan(0);
  });
});

test('the agents hold no fd once every restore is over', async () => {
  await stopAll(agents);
  agents = [];
  expect(openFdCount()).toBe(fdsBefore);
});
