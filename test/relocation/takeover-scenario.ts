/**
 * The node-takeover scenario, shared by the loopback and the network-namespace tests.
 *
 * A job ran on nodes A, B and C: a parent daemon per node (orterun on A, orted on B and C) and
 * ranks r1 (A), r2 (B), r3 and r4 (C). At checkpoint:
 *   dB -> dA, dC -> dA            daemon tree
 *   r1 -> dA, r2 -> dB            ranks to their local daemon
 *   r3 -> dC, r4 -> dC            ranks of C to C's daemon
 *   r3 -> r1, r4 -> r2, r4 -> r3  rank to rank (r4 -> r3 within C)
 * Several endpoints had bytes in flight (drained). Then node C is taken out of service: r3 is
 * restarted on A and r4 on B with `rewire exec`; dC is not restarted. Expected:
 *   dB -> dA            live across nodes; dC -> dA: dA's end is dead (its node departed)
 *   r3 -> dC, r4 -> dC  re-homed to dA and dB, which receive them on their open sessions
 *   r3 -> r1, r4 -> r2  now on one node: paired locally
 *   r4 -> r3            across nodes (B -> A)
 * and the head daemon's host table lists B and no longer C.
 */
import { expect } from 'bun:test';
import { join } from 'node:path';

import type { Endpoint, Manifest, ProcessId } from '../../src/model/types.ts';
import { fixtures, type ExecResult } from '../helpers/cluster.ts';

export const NODE = { A: 101n, B: 102n, C: 103n } as const;
export const JOB = 'job-42';

const p = (node: bigint, pid: number): ProcessId => ({
  hostId: node,
  pid,
  birthTime: 1_800_000_000n + BigInt(pid),
  generation: 2,
});

export const P = {
  dA: p(NODE.A, 100),
  dB: p(NODE.B, 200),
  dC: p(NODE.C, 300),
  r1: p(NODE.A, 101),
  r2: p(NODE.B, 201),
  r3: p(NODE.C, 301),
  r4: p(NODE.C, 302),
};
type Name = keyof typeof P;

const exe: Record<Name, string> = {
  dA: 'orterun',
  dB: 'orted',
  dC: 'orted',
  r1: 'rank',
  r2: 'rank',
  r3: 'rank',
  r4: 'rank',
};
const bornOn: Record<Name, bigint> = {
  dA: NODE.A,
  dB: NODE.B,
  dC: NODE.C,
  r1: NODE.A,
  r2: NODE.B,
  r3: NODE.C,
  r4: NODE.C,
};

/** [connecting process, conn, accepting process, conn, bytes in flight toward connector, toward acceptor] */
const links: Array<[Name, number, Name, number, string, string]> = [
  ['dB', 1, 'dA', 1, 'dA->dB in flight', 'dB->dA in flight'],
  ['dC', 1, 'dA', 2, '', 'dC said goodbye'],
  ['r1', 1, 'dA', 3, 'daemon to r1', ''],
  ['r2', 1, 'dB', 2, '', 'r2 to daemon'],
  ['r3', 1, 'dC', 2, 'old daemon to r3', ''],
  ['r4', 1, 'dC', 3, '', ''],
  ['r3', 2, 'r1', 2, 'r1 to r3 in flight', 'r3 to r1 in flight'],
  ['r4', 2, 'r2', 2, '', 'r4 to r2 in flight'],
  ['r4', 3, 'r3', 3, 'r3 to r4 in flight', 'r4 to r3 in flight'],
];

const enc = (s: string) => new TextEncoder().encode(s);
const isDaemon = (name: Name) => exe[name] !== 'rank';
const int = (level: number, name: number, value: number, label: string) => {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value, true);
  return { level, name, value: bytes, label };
};

/**
 * What the daemons' accepted sockets carried at checkpoint. A connection re-homed to a daemon
 * must get these too: the agent reads them from the daemon's restored sibling sockets.
 */
export const daemonOptions = [
  int(1, 9, 1, 'SO_KEEPALIVE'),
  int(6, 4, 77, 'TCP_KEEPIDLE'),
  int(6, 6, 5, 'TCP_KEEPCNT'),
];

function endpointsOf(name: Name): Endpoint[] {
  const out: Endpoint[] = [];
  for (const [c, cc, a, ac, toC, toA] of links) {
    if (c === name) out.push(ep(name, cc, 'connect', a, ac, toC));
    if (a === name) out.push(ep(name, ac, 'accept', c, cc, toA));
  }
  return out;
}

function ep(
  name: Name,
  conn: number,
  role: 'connect' | 'accept',
  peer: Name,
  peerConn: number,
  drained: string,
): Endpoint {
  return {
    id: { process: P[name], conn },
    peer: { process: P[peer], conn: peerConn },
    role,
    family: 'inet',
    type: 'stream',
    protocol: 6,
    fds: [20 + conn],
    options: isDaemon(name) && role === 'accept' ? daemonOptions : [],
    drained: enc(drained),
    peerNode: bornOn[peer],
    peerExecutable: exe[peer],
  };
}

export function manifestOf(name: Name): Manifest {
  return {
    process: P[name],
    executable: exe[name],
    pid: 0,
    checkpointPid: P[name].pid,
    job: JOB,
    endpoints: endpointsOf(name),
  };
}

/** The restarted processes, the node each runs on now, and its job_process.py arguments. */
export interface Launch {
  name: Name;
  node: bigint;
  manifest: Manifest;
  command: string[];
  execFlags: string[];
}

const SESSION_FD = 60;

export function launches(count = 3000): Launch[] {
  const now: Partial<Record<Name, bigint>> = {
    dA: NODE.A,
    dB: NODE.B,
    r1: NODE.A,
    r2: NODE.B,
    r3: NODE.A,
    r4: NODE.B,
  };
  const rehomedTo: Partial<Record<Name, number>> = { dA: 1, dB: 1 };
  return (Object.keys(now) as Name[]).map((name) => {
    const m = manifestOf(name);
    const conns = m.endpoints
      .filter((e) => !(name === 'dA' && e.id.conn === 2))
      .map((e) => {
        const peerName = (Object.keys(P) as Name[]).find((n) => P[n] === e.peer!.process)!;
        const peerTag = peerName === 'dC' ? '*' : peerName;
        const hex = Buffer.from(e.drained).toString('hex');
        return `${e.fds[0]}:${name}:${peerTag}${hex ? `:${hex}` : ''}`;
      });
    const daemon = rehomedTo[name] !== undefined;
    const command = [
      'python3',
      join(fixtures, 'job_process.py'),
      '--tag',
      name,
      '--count',
      String(count),
      ...conns.flatMap((c) => ['--conn', c]),
      ...(daemon
        ? ['--session-fd', String(SESSION_FD), '--expect-rehomed', String(rehomedTo[name])]
        : []),
    ];
    return {
      name,
      node: now[name]!,
      manifest: m,
      command,
      execFlags: daemon ? ['--session-fd', String(SESSION_FD)] : [],
    };
  });
}

export const placedProcesses = (): Array<[ProcessId, bigint]> => [
  [P.dA, NODE.A],
  [P.dB, NODE.B],
  [P.r1, NODE.A],
  [P.r2, NODE.B],
  [P.r3, NODE.A],
  [P.r4, NODE.B],
];

export interface JobReport {
  pid: number;
  conns: Record<
    string,
    { drained_ok: boolean; peer_tag: string | null; lines: number; error: string | null }
  >;
  rehomed: Array<{ fd: number; how: string; family: string; options: Record<string, number> }>;
  timed_out: boolean;
}

export function jobReport(name: string, r: ExecResult): JobReport {
  if (r.code !== 0 || !r.stdout.trim()) throw new Error(`${name} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as JobReport;
}

type Reports = Record<string, JobReport & { stderr: string }>;

/**
 * What every run of the scenario must show in the processes' own reports: each connection
 * finished its exchange byte-exact with its drained bytes first, C's ranks reached the daemon of
 * their new node, which received them on its session, and A's link to C's daemon is dead.
 */
export function expectTakeoverReports(reports: Reports, count = 3000): void {
  for (const [name, report] of Object.entries(reports)) {
    expect({ name, timedOut: report.timed_out }).toEqual({ name, timedOut: false });
    for (const [fd, c] of Object.entries(report.conns)) {
      const seen = { name, fd, error: c.error, drained: c.drained_ok, lines: c.lines };
      expect(seen).toEqual({ name, fd, error: null, drained: true, lines: count });
    }
  }
  expect(reports.r3!.conns['21']!.peer_tag).toBe('dA');
  expect(reports.r4!.conns['21']!.peer_tag).toBe('dB');
  for (const daemon of [reports.dA!, reports.dB!]) {
    expect(daemon.rehomed.map((r) => [r.how, r.family])).toEqual([['rehomed', 'AF_INET']]);
    // Measured from the daemon's sibling sockets, not made up.
    expect(daemon.rehomed[0]!.options).toEqual({
      SO_KEEPALIVE: 1,
      TCP_KEEPIDLE: 77,
      TCP_KEEPCNT: 5,
    });
  }
  expect(reports.dA!.stderr).toContain('is dead (EPEER_GONE)');
}
