/**
 * Node takeover across network namespaces: one namespace per node (A, B, C) with its own
 * address on a bridge, an agent process per live node started with `rewire agent` and driven
 * over its API socket, and every restarted process started inside its node's namespace with
 * `rewire exec`. Node C is out of service: its agent is not running and the placement marks it
 * departed. The scenario and its expectations are those of takeover-scenario.ts.
 *
 * Needs root and `ip netns` (CI runs as root); elsewhere it skips and says why.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { endpointKey, processKey } from '../../src/model/ids.ts';
import { placementToJson } from '../../src/model/schema.ts';
import type { Placement } from '../../src/model/types.ts';
import type { ConnectionView, HostTableView } from '../../src/agent/handle.ts';
import { clusterKey, execWith, repoRoot } from '../helpers/cluster.ts';
import {
  expectTakeoverReports,
  jobReport,
  launches,
  NODE,
  P,
  placedProcesses,
} from './takeover-scenario.ts';

const tag = String(process.pid % 100000);
const ns = { A: `rwA${tag}`, B: `rwB${tag}`, C: `rwC${tag}`, hub: `rwH${tag}` };
const address = { A: '10.231.0.1', B: '10.231.0.2', C: '10.231.0.3' };
const PORT = 7780;

function sh(args: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(args, { stderr: 'pipe', stdout: 'pipe' });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

/** Why namespaces cannot be used here, or undefined when they can. */
function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!Bun.which('ip')) return "the 'ip' command (iproute2) is not installed";
  const probe = `rwprobe${tag}`;
  const r = sh(['ip', 'netns', 'add', probe]);
  if (!r.ok) return `'ip netns add' failed: ${r.err}`;
  sh(['ip', 'netns', 'del', probe]);
  return undefined;
}

const reason = unavailable();
if (reason) console.warn(`skip: node takeover across network namespaces: ${reason}`);

const dir = mkdtempSync(join(tmpdir(), 'rewire-netns-'));
const agents: Array<{ proc: Bun.Subprocess; api: string; control: string }> = [];

function setUpNetwork(): void {
  const run = (args: string[]) => {
    const r = sh(args);
    if (!r.ok) throw new Error(`${args.join(' ')}: ${r.err}`);
  };
  run(['ip', 'netns', 'add', ns.hub]);
  run(['ip', '-n', ns.hub, 'link', 'add', 'br0', 'type', 'bridge']);
  run(['ip', '-n', ns.hub, 'link', 'set', 'br0', 'up']);
  for (const node of ['A', 'B', 'C'] as const) {
    const inner = `v${node}${tag}`;
    const outer = `h${node}${tag}`;
    run(['ip', 'netns', 'add', ns[node]]);
    run([
      'ip',
      'link',
      'add',
      inner,
      'netns',
      ns[node],
      'type',
      'veth',
      'peer',
      'name',
      outer,
      'netns',
      ns.hub,
    ]);
    run(['ip', '-n', ns.hub, 'link', 'set', outer, 'master', 'br0', 'up']);
    run(['ip', '-n', ns[node], 'addr', 'add', `${address[node]}/24`, 'dev', inner]);
    run(['ip', '-n', ns[node], 'link', 'set', inner, 'up']);
    run(['ip', '-n', ns[node], 'link', 'set', 'lo', 'up']);
  }
}

async function startAgent(
  node: 'A' | 'B',
  nodeId: bigint,
): Promise<{ proc: Bun.Subprocess; api: string; control: string }> {
  const base = join(dir, node);
  const keyFile = join(dir, 'cluster.key');
  const runtime = join(base, 'run');
  const proc = Bun.spawn(
    [
      'ip',
      'netns',
      'exec',
      ns[node],
      process.execPath,
      join(repoRoot, 'src/main.ts'),
      'agent',
      '--node-id',
      String(nodeId),
      '--node-name',
      `node-${node}`,
      '--listen',
      `${address[node]}:${PORT}`,
      '--http-port',
      '0',
      '--state-dir',
      join(base, 'state'),
      '--runtime-dir',
      runtime,
      '--cluster-key-file',
      keyFile,
      '--log-level',
      'warn',
      '--handshake-deadline-ms',
      '5000',
    ],
    { stdout: 'ignore', stderr: 'inherit' },
  );
  const api = join(runtime, 'api.sock');
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (existsSync(api)) {
      const ready = await fetch('http://agent/readyz', { unix: api }).catch(() => undefined);
      if (ready?.ok) break;
    }
    if (Date.now() > deadline || proc.exitCode !== null)
      throw new Error(`agent on node ${node} did not become ready`);
    await Bun.sleep(50);
  }
  return { proc, api, control: join(runtime, 'control.sock') };
}

async function api<T>(socket: string, path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`http://agent${path}`, { ...init, unix: socket });
  if (!res.ok)
    throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

beforeAll(async () => {
  if (reason) return;
  writeFileSync(join(dir, 'cluster.key'), Buffer.from(clusterKey).toString('hex'), { mode: 0o600 });
  setUpNetwork();
  agents.push(await startAgent('A', NODE.A), await startAgent('B', NODE.B));
});

afterAll(async () => {
  for (const a of agents) a.proc.kill('SIGTERM');
  await Promise.all(agents.map((a) => a.proc.exited));
  if (reason) return;
  for (const name of Object.values(ns)) sh(['ip', 'netns', 'del', name]);
});

test.skipIf(reason !== undefined)(
  "node C leaves: across namespaces every live connection continues byte-exact and C's ranks are re-homed",
  async () => {
    const [a, b] = agents as [(typeof agents)[0], (typeof agents)[0]];
    const placement: Placement = {
      version: 1n,
      nodes: [
        { nodeId: NODE.A, address: address.A, port: PORT, name: 'node-A' },
        { nodeId: NODE.B, address: address.B, port: PORT, name: 'node-B' },
        { nodeId: NODE.C, address: address.C, port: PORT, name: 'node-C', departed: true },
      ],
      processes: placedProcesses().map(([process, nodeId]) => ({ process, nodeId })),
      replacements: [],
    };
    const body = JSON.stringify(placementToJson(placement));
    for (const agent of [a, b]) {
      await api(agent.api, '/v1/placement', {
        method: 'PUT',
        body,
        headers: { 'content-type': 'application/json' },
      });
    }

    const where = {
      [String(NODE.A)]: { ns: ns.A, agent: a },
      [String(NODE.B)]: { ns: ns.B, agent: b },
    };
    const runs = launches().map(async (l) => {
      const at = where[String(l.node)]!;
      const result = await execWith(at.agent.control, l.manifest, l.command, {
        execFlags: l.execFlags,
        wrap: ['ip', 'netns', 'exec', at.ns],
        timeoutMs: 60_000,
      });
      return [l.name, { ...jobReport(l.name, result), stderr: result.stderr }] as const;
    });
    const reports = Object.fromEntries(await Promise.all(runs));

    expectTakeoverReports(reports);

    // r4 (now on B) reached r3 (now on A) through the namespaces' addresses.
    const { connections } = await api<{ connections: ConnectionView[] }>(
      b.api,
      `/v1/connections?process=${processKey(P.r4)}`,
    );
    const r4r3 = connections.find((c) => c.endpoint === endpointKey({ process: P.r4, conn: 3 }))!;
    expect(r4r3).toMatchObject({ how: 'remote', peerNode: String(NODE.A), sameNode: false });

    const { hosts } = await api<{ hosts: HostTableView[] }>(a.api, '/v1/hosts');
    const head = hosts.find((h) => h.process === processKey(P.dA))!;
    expect(head.entries.map((e) => e.remoteNode)).toEqual([String(NODE.B)]);
  },
  120_000,
);
