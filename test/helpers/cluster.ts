/**
 * Test helpers: agents on loopback with their own node ids and ports, in this test process,
 * and manifests for pairs of endpoints.
 */
import { afterEach } from 'bun:test';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startAgent, type RunningAgent } from '../../src/agent/agent.ts';
import type { AgentConfig } from '../../src/config/types.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { encodeInt, optionSpec } from '../../ffi/index.ts';
import { manifestToJson } from '../../src/model/schema.ts';
import type {
  Endpoint,
  Manifest,
  Placement,
  ProcessId,
  SocketOption,
} from '../../src/model/types.ts';

export const clusterKey = new Uint8Array(32).fill(7);

export function testConfig(nodeId: bigint, overrides: Partial<AgentConfig> = {}): AgentConfig {
  const dir = mkdtempSync(join(tmpdir(), 'rewire-test-'));
  return {
    nodeId,
    nodeName: `node-${nodeId}`,
    listen: { address: '127.0.0.1', port: 0 },
    advertise: { address: '127.0.0.1', port: 0 },
    clusterKey,
    http: { address: '127.0.0.1', port: 0, token: undefined },
    stateDir: join(dir, 'state'),
    runtimeDir: join(dir, 'run'),
    localPolicy: 'keep-family',
    deadlines: { connectMs: 2000, handshakeMs: 3000, restoreMs: 8000 },
    dialConcurrency: 64,
    maxFrameBytes: 64 * 1024 * 1024,
    parentDaemons: ['orterun', 'mpirun', 'orted'],
    placement: undefined,
    logLevel: 'error',
    ...overrides,
  };
}

const logger =
  process.env.REWIRE_TEST_LOG === '1'
    ? createLogger({ level: 'debug', json: false })
    : silentLogger;

/** Starts one agent per node id; the placement lists them all with their bound ports. */
export async function startCluster(
  nodeIds: bigint[],
  overrides: (id: bigint) => Partial<AgentConfig> = () => ({}),
): Promise<RunningAgent[]> {
  const agents: RunningAgent[] = [];
  for (const id of nodeIds) agents.push(await startAgent(testConfig(id, overrides(id)), logger));
  return agents;
}

export function nodesOf(agents: RunningAgent[]): Placement['nodes'] {
  return agents.map((a) => ({
    nodeId: BigInt(a.node().nodeId),
    address: '127.0.0.1',
    port: a.peerPort,
  }));
}

/** Gives every agent the same placement. */
export function place(
  agents: RunningAgent[],
  version: bigint,
  processes: Array<[ProcessId, bigint]>,
  extra: Partial<Placement> = {},
): Placement {
  const placement: Placement = {
    version,
    nodes: nodesOf(agents),
    processes: processes.map(([process, nodeId]) => ({ process, nodeId })),
    replacements: [],
    ...extra,
  };
  for (const a of agents) a.setPlacement(placement);
  return placement;
}

export function proc(hostId: bigint, pid: number): ProcessId {
  return { hostId, pid, birthTime: 1700000000n + BigInt(pid), generation: 1 };
}

export function endpoint(
  p: ProcessId,
  conn: number,
  role: Endpoint['role'],
  peer: [ProcessId, number] | undefined,
  extra: Partial<Endpoint> = {},
): Endpoint {
  return {
    id: { process: p, conn },
    peer: peer ? { process: peer[0], conn: peer[1] } : undefined,
    role,
    family: 'inet',
    type: 'stream',
    protocol: 6,
    fds: [10 + conn],
    options: [],
    drained: new Uint8Array(0),
    ...extra,
  };
}

export function manifest(
  p: ProcessId,
  endpoints: Endpoint[],
  extra: Partial<Manifest> = {},
): Manifest {
  return { process: p, executable: 'rank', pid: 0, checkpointPid: p.pid, endpoints, ...extra };
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export async function stopAll(agents: RunningAgent[]): Promise<void> {
  for (const a of agents) await a.stop();
}

/** A recorded int option, as getsockopt would have returned it. */
export function intOption(label: string, value: number): SocketOption {
  const spec = optionSpec(label);
  return { level: spec.level, name: spec.optname, value: encodeInt(value), label };
}

export function lingerOption(onoff: boolean, seconds: number): SocketOption {
  const value = new Uint8Array(8);
  const view = new DataView(value.buffer);
  view.setInt32(0, onoff ? 1 : 0, true);
  view.setInt32(4, seconds, true);
  return { level: 1, name: 13, value, label: 'SO_LINGER' };
}

const repo = join(import.meta.dir, '..', '..');

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `rewire exec` for `m` with `command`; resolves when the process exits (or is killed). */
export async function execWith(
  controlSocket: string,
  m: Manifest,
  command: string[],
  options: { timeoutMs?: number; execFlags?: string[]; wrap?: string[] } = {},
): Promise<ExecResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rewire-exec-'));
  const file = join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify(manifestToJson(m)));
  const argv = [
    ...(options.wrap ?? []),
    process.execPath,
    join(repo, 'src/main.ts'),
    'exec',
    '--manifest',
    file,
    '--control',
    controlSocket,
    ...(options.execFlags ?? []),
    '--',
    ...command,
  ];
  const proc = Bun.spawn(argv, { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' });
  const timer = setTimeout(() => proc.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs `rewire exec` for `m` against `agent`, with the Python stream peer as the command. */
export function execPeer(
  agent: RunningAgent,
  m: Manifest,
  peerArgs: string[],
  timeoutMs = 30_000,
): Promise<ExecResult> {
  const peer = ['python3', join(repo, 'test/fixtures/stream_peer.py'), ...peerArgs];
  return execWith(agent.controlSocketPath, m, peer, { timeoutMs });
}

export const fixtures = join(repo, 'test/fixtures');
export const repoRoot = repo;

/** Parses the stream peer's report, failing with its stderr when it printed none. */
export function peerReport(r: ExecResult): PeerReport {
  if (r.code !== 0 || !r.stdout.trim()) throw new Error(`peer exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as PeerReport;
}

export interface PeerReport {
  pid: number;
  fds: Record<
    string,
    {
      state: {
        family: string;
        options: Record<string, number | number[]>;
        nonblock: boolean;
        async: boolean;
        owner: number;
        signal: number;
        cloexec: boolean;
      };
      drained_ok?: boolean;
      stream_bytes?: number;
    }
  >;
}

/**
 * For a test file whose tests each start their own agents: `start` starts them, and they are
 * stopped after each test; `current` is the running test's agents.
 */
export function agentsPerTest(): {
  start: (
    ids: bigint[],
    overrides?: (id: bigint) => Partial<AgentConfig>,
  ) => Promise<RunningAgent[]>;
  readonly current: RunningAgent[];
} {
  let running: RunningAgent[] = [];
  afterEach(async () => {
    await stopAll(running);
    running = [];
  });
  return {
    start: async (ids, overrides = () => ({})) => (running = await startCluster(ids, overrides)),
    get current() {
      return running;
    },
  };
}
