/**
 * `bun run bench:restore -- --n N`: restores N connections between two agents (separate
 * processes, loopback), each endpoint with three options and 64 drained bytes, and in the same
 * run times a C program doing the same kernel work for the same N (bench/baseline.c, compiled
 * here with cc). The last line is
 *   restore n=N agent_s=… c_s=… ratio=… agent_rss_mb=…
 * agent_s runs from the first restore request to the last endpoint delivered to its process;
 * agent_rss_mb is the larger peak RSS (VmHWM) of the two agents. The line before it times
 * bench/floor.c, the system calls of rewire's own protocol made by C alone (floor_s), against
 * the same baseline.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { bind, close, getSockName, socket } from '../ffi/index.ts';
import { manifestToJson, placementToJson } from '../src/model/schema.ts';
import type { Endpoint, Manifest, Placement, ProcessId } from '../src/model/types.ts';

const n = Number(argValue('--n') ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'rewire-bench-'));

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function freePort(): number {
  const fd = socket('inet', 'stream');
  try {
    bind(fd, { family: 'inet', address: '127.0.0.1', port: 0 });
    const addr = getSockName(fd);
    return addr.family === 'inet' ? addr.port : 0;
  } finally {
    close(fd);
  }
}

/** Compiles `bench/NAME.c` and runs it for N connections; returns the seconds it prints. */
function cSeconds(name: 'baseline' | 'floor'): number {
  const exe = join(dir, name);
  const cc = Bun.spawnSync(['cc', '-O2', '-o', exe, join(import.meta.dir, `${name}.c`)]);
  if (cc.exitCode !== 0) throw new Error(`cc failed: ${cc.stderr.toString()}`);
  const run = Bun.spawnSync([exe, String(n)]);
  if (run.exitCode !== 0) throw new Error(`${name} failed: ${run.stderr.toString()}`);
  return Number(run.stdout.toString().trim());
}

const int = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
};
const options = [
  { level: 6, name: 1, value: int(1), label: 'TCP_NODELAY' },
  { level: 1, name: 9, value: int(1), label: 'SO_KEEPALIVE' },
  { level: 1, name: 7, value: int(131072), label: 'SO_SNDBUF' },
];

function endpoints(self: ProcessId, peer: ProcessId, role: 'connect' | 'accept'): Endpoint[] {
  const drained = new Uint8Array(64).fill(role === 'connect' ? 0x63 : 0x61);
  return Array.from({ length: n }, (_, i) => ({
    id: { process: self, conn: i },
    peer: { process: peer, conn: i },
    role,
    family: 'inet' as const,
    type: 'stream' as const,
    protocol: 6,
    fds: [100 + i],
    options,
    drained,
  }));
}

/** Reads a child's stdout until `want` appears (within 120 s); returns what came after the last line before it. */
async function readUntil(
  reader: { read(): Promise<{ value?: Uint8Array; done?: boolean }> },
  want: string,
): Promise<string> {
  let text = '';
  const deadline = Date.now() + 120_000;
  while (!text.includes(want)) {
    if (Date.now() > deadline) throw new Error(`child did not print '${want}' within 120 s`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`child exited before printing '${want}': ${text}`);
    text += new TextDecoder().decode(value);
  }
  return text;
}

async function waitForLine(
  proc: Bun.Subprocess<'ignore', 'pipe', 'inherit'>,
  want: string,
): Promise<void> {
  const reader = proc.stdout.getReader();
  await readUntil(reader, want);
  reader.releaseLock();
}

/** User plus system CPU time of a process so far, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of each thread of a process, busiest first, as `name:seconds`. */
function threadCpu(pid: number): string {
  const { readdirSync } = require('node:fs') as typeof import('node:fs');
  return readdirSync(`/proc/${pid}/task`)
    .map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.split(') ')[1]!.split(' ');
      return {
        name,
        s: (Number(fields[11]) + Number(fields[12])) / 100,
        sys: Number(fields[12]) / 100,
      };
    })
    .filter((t) => t.s > 0.05)
    .sort((a, b) => b.s - a.s)
    .map((t) => `${t.name}:${t.s.toFixed(2)}(sys ${t.sys.toFixed(2)})`)
    .join(',');
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function agentSeconds(): Promise<{ seconds: number; rssMb: number }> {
  const pA: ProcessId = { hostId: 1n, pid: 10, birthTime: 1n, generation: 1 };
  const pB: ProcessId = { hostId: 2n, pid: 20, birthTime: 2n, generation: 1 };
  const ports = [freePort(), freePort()];
  const placement: Placement = {
    version: 1n,
    nodes: [
      { nodeId: 1n, address: '127.0.0.1', port: ports[0]! },
      { nodeId: 2n, address: '127.0.0.1', port: ports[1]! },
    ],
    processes: [
      { process: pA, nodeId: 1n },
      { process: pB, nodeId: 2n },
    ],
    replacements: [],
  };
  const placementFile = join(dir, 'placement.json');
  writeFileSync(placementFile, JSON.stringify(placementToJson(placement)));
  const manifests: Array<[string, Manifest]> = [
    [
      join(dir, 'a.json'),
      { process: pA, executable: 'rank', pid: 0, endpoints: endpoints(pA, pB, 'connect') },
    ],
    [
      join(dir, 'b.json'),
      { process: pB, executable: 'rank', pid: 0, endpoints: endpoints(pB, pA, 'accept') },
    ],
  ];
  for (const [file, m] of manifests) writeFileSync(file, JSON.stringify(manifestToJson(m)));

  const agents = [1, 2].map((id, i) =>
    Bun.spawn(
      [
        'bun',
        ...profileFlags(`agent-${id}`),
        join(import.meta.dir, 'agent-process.ts'),
        String(id),
        String(ports[i]),
        join(dir, `run${id}`),
        placementFile,
      ],
      {
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'inherit',
      },
    ),
  );
  try {
    await Promise.all(agents.map((a) => waitForLine(a, 'ready')));
    const clients = manifests.map(([file], i) =>
      Bun.spawn(
        [
          'bun',
          ...profileFlags(`client-${i + 1}`),
          join(import.meta.dir, 'client-process.ts'),
          join(dir, `run${i + 1}`, 'control.sock'),
          file,
        ],
        {
          stdin: 'pipe',
          stdout: 'pipe',
          stderr: 'inherit',
        },
      ),
    );
    const outputs = clients.map((c) => c.stdout.getReader());
    await Promise.all(outputs.map((o) => readUntil(o, 'loaded')));
    for (const c of clients) {
      c.stdin.write('go\n');
      await c.stdin.flush();
    }
    const results = await Promise.all(
      clients.map(async (c, i) => {
        const text = await readUntil(outputs[i]!, '}');
        if ((await c.exited) !== 0) throw new Error(`client failed: ${text}`);
        const result = JSON.parse(text.slice(text.indexOf('{'))) as {
          start: number;
          end: number;
          live: number;
          cpuSeconds: number;
          failed: string | null;
        };
        if (process.env.REWIRE_BENCH_VERBOSE) {
          console.log(`client pid ${c.pid} restore_cpu_s=${result.cpuSeconds.toFixed(2)}`);
        }
        return result;
      }),
    );
    for (const r of results)
      if (r.live !== n) throw new Error(`only ${r.live} of ${n} endpoints live: ${r.failed}`);
    const seconds =
      (Math.max(...results.map((r) => r.end)) - Math.min(...results.map((r) => r.start))) / 1000;
    const rssMb = Math.max(...agents.map((a) => peakRssMb(a.pid)));
    if (process.env.REWIRE_BENCH_VERBOSE) {
      for (const a of agents)
        console.log(
          `agent pid ${a.pid} cpu_s=${cpuSeconds(a.pid).toFixed(2)} threads=${threadCpu(a.pid)}`,
        );
    }
    return { seconds, rssMb };
  } finally {
    for (const a of agents) a.kill('SIGTERM');
    await Promise.all(agents.map((a) => a.exited));
  }
}

const c = cSeconds('baseline');
const floor = cSeconds('floor');
const agent = await agentSeconds();
// The kernel work of rewire's own protocol (bench/floor.c), against the same baseline: how
// much of agent_s the protocol asks of the kernel, and how much is the agents' own.
console.log(
  `floor n=${n} floor_s=${floor.toFixed(3)} floor_ratio=${(floor / c).toFixed(2)} agent_over_floor=${(agent.seconds / floor).toFixed(2)}`,
);
console.log(
  `restore n=${n} agent_s=${agent.seconds.toFixed(3)} c_s=${c.toFixed(3)} ratio=${(agent.seconds / c).toFixed(2)} agent_rss_mb=${agent.rssMb.toFixed(1)}`,
);

/**
 * With REWIRE_BENCH_PROFILE=DIR, each agent and client writes a CPU profile (markdown) into
 * DIR. Set BUN_JSC_useFTLJIT=false too, so that the agents do not re-execute themselves
 * (src/agent/runtime-flags.ts) and lose the profiler's flags.
 */
function profileFlags(name: string): string[] {
  const out = process.env.REWIRE_BENCH_PROFILE;
  return out ? ['--cpu-prof-md', `--cpu-prof-dir=${out}`, `--cpu-prof-name=${name}.md`] : [];
}
