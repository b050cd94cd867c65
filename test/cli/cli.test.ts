/**
 * The CLI run as a subprocess against a running agent: `--json` output parsed, tables on
 * request, exit codes as `rewire help` documents them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { RestoreView } from '../../src/agent/handle.ts';
import { processKey } from '../../src/model/ids.ts';
import { manifestToJson, placementToJson } from '../../src/model/schema.ts';
import type { Endpoint, Manifest } from '../../src/model/types.ts';
import { version } from '../../src/version.ts';
import { startApiAgent, type ApiAgent } from '../api/helpers.ts';
import { endpoint, manifest, proc } from '../helpers/cluster.ts';
import { runCli } from './run-cli.ts';

const NODE = 6161n;
let a: ApiAgent;
let sock: string[];

beforeAll(async () => {
  a = await startApiAgent({ nodeId: NODE });
  sock = ['--socket', a.api.socketPath];
});

afterAll(async () => {
  await a.stop();
});

function writeManifest(name: string, m: Manifest): string {
  const path = join(a.dir, name);
  writeFileSync(path, JSON.stringify(manifestToJson(m)));
  return path;
}

function listener(p: ReturnType<typeof proc>, conn: number, port: number): Endpoint {
  return endpoint(p, conn, 'listen', undefined, {
    local: { family: 'inet', address: '127.0.0.1', port },
    backlog: 16,
  });
}

describe('local commands', () => {
  test('version prints the version, and --json the details', async () => {
    const text = await runCli(['version']);
    expect(text.code).toBe(0);
    expect(text.stdout).toStartWith(`rewire ${version} (linux-`);

    const json = await runCli(['--version', '--json']);
    expect(json.json()).toMatchObject({ version, platform: 'linux', arch: process.arch });
  });

  test('help lists every command and the exit codes', async () => {
    const result = await runCli(['help']);
    expect(result.code).toBe(0);
    for (const name of ['agent', 'status', 'peers', 'connections', 'hosts', 'restore', 'version']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
    expect(result.stdout).toContain('Exit codes:');
    expect(result.stdout).toMatch(/^ {2}3 {2}agent unreachable/m);
    expect(result.stdout).toMatch(/^ {2}4 {2}restore partially failed/m);
  });

  test('help COMMAND and COMMAND --help show its usage and options', async () => {
    const help = await runCli(['help', 'restore']);
    const flag = await runCli(['restore', '--help']);
    expect(help.stdout).toStartWith('Usage: rewire restore ');
    expect(help.stdout).toContain('--no-wait');
    expect(flag.stdout).toBe(help.stdout);

    const agent = await runCli(['agent', '-h']);
    expect(agent.stdout).toContain('--listen HOST:PORT');
    expect(agent.stdout).toContain('env: REWIRE_HTTP_TOKEN');
  });

  test('usage errors exit 2 with a message saying what is wrong', async () => {
    const cases: [string[], string][] = [
      [[], 'Usage: rewire COMMAND'],
      [['frobnicate'], "rewire: Unknown command 'frobnicate': see 'rewire help'"],
      [['status', '--bogus'], "rewire: Unknown option '--bogus'"],
      [['restore'], "rewire: 'rewire restore' takes 1 argument(s), got 0"],
      [['peers', 'extra'], "rewire: 'rewire peers' takes 0 argument(s), got 1"],
      [['status', '--', 'x'], "rewire: 'rewire status' takes no arguments after '--'"],
      [
        ['restore', '/nonexistent.json'],
        "rewire: Cannot read manifest '/nonexistent.json': ENOENT",
      ],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
    }
  });
});

describe('client commands', () => {
  test('status --json shows the node and readiness over the socket', async () => {
    const result = await runCli(['status', '--json', ...sock]);
    expect(result.code).toBe(0);
    expect(result.json()).toMatchObject({
      ready: true,
      node: { nodeId: NODE.toString() },
      peers: 0,
    });
  });

  test('status prints fields on a terminal-style run, over TCP with --url', async () => {
    const result = await runCli(['status', '--url', a.api.url]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^node: +\S+ \(6161\)$/m);
    expect(result.stdout).toMatch(/^ready: +yes$/m);
  });

  test('an unreachable agent exits 3 and says where it looked', async () => {
    const missing = join(a.dir, 'missing.sock');
    const result = await runCli(['status', '--socket', missing]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      `rewire: Cannot reach the agent at unix socket '${missing}': ENOENT`,
    );

    const json = await runCli(['peers', '--json', '--socket', missing]);
    expect(json.code).toBe(3);
    expect(json.json().error.code).toBe('EUNREACHABLE');
  });

  test('placement --set replaces the placement, and placement shows it', async () => {
    const p = {
      version: 1n,
      nodes: [{ nodeId: NODE, address: '127.0.0.1', port: a.agent.peerPort }],
      processes: [proc(NODE, 1), proc(NODE, 2)].map((process) => ({ process, nodeId: NODE })),
      replacements: [],
    };
    const file = join(a.dir, 'placement.json');
    writeFileSync(file, JSON.stringify(placementToJson(p)));

    const set = await runCli(['placement', '--set', file, ...sock]);
    expect(set.code).toBe(0);
    expect((await runCli(['placement', ...sock])).json()).toEqual(placementToJson(p));
  });

  test('restore watches until done and prints the final view as JSON', async () => {
    const p1 = proc(NODE, 1);
    const p2 = proc(NODE, 2);
    const m2 = writeManifest('p2.json', manifest(p2, [endpoint(p2, 1, 'accept', [p1, 1])]));
    const m1 = writeManifest(
      'p1.json',
      manifest(p1, [endpoint(p1, 1, 'connect', [p2, 1])], { executable: 'mpirun' }),
    );

    const started = await runCli(['restore', '--no-wait', '--json', m2, ...sock]);
    expect(started.code).toBe(0);
    expect(started.json().state).toBe('running');

    const done = await runCli(['restore', '--json', m1, ...sock]);
    expect(done.code).toBe(0);
    const view = done.json() as RestoreView;
    expect(view).toMatchObject({ state: 'done', counts: { live: 1, failed: 0 } });
  });

  test('connections --json filters, and a table lists them', async () => {
    const key = processKey(proc(NODE, 1));
    const json = await runCli(['connections', '--json', '--process', key, ...sock]);
    expect(json.code).toBe(0);
    expect(json.json().connections).toHaveLength(1);
    expect(json.json().connections[0]).toMatchObject({
      process: key,
      state: 'live',
      how: 'local-pair',
    });

    const table = await runCli(['connections', '--state', 'live', ...sock]);
    expect(table.stdout).toStartWith('ENDPOINT');
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
  });

  test('hosts --json shows the parent daemon', async () => {
    const result = await runCli(['hosts', '--json', ...sock]);
    expect(result.code).toBe(0);
    expect(result.json().hosts).toEqual([
      { process: processKey(proc(NODE, 1)), executable: 'mpirun', pid: 0, entries: [] },
    ]);
  });

  test('peers prints a table with (none) on a single node', async () => {
    const result = await runCli(['peers', ...sock]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('NODE ID  NAME  ADDRESS  STATE  LAST SEEN  LAST ERROR\n(none)\n');
  });

  test('restores lists restores and shows one', async () => {
    const list = await runCli(['restores', '--json', ...sock]);
    const ids = (list.json().restores as RestoreView[]).map((r) => r.id);
    expect(ids.length).toBeGreaterThanOrEqual(2);

    const one = await runCli(['restores', ids[0]!, ...sock]);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`restore:   ${ids[0]}`);
  });

  test('restore exits 4 when some endpoints failed and 5 when all did', async () => {
    const busy = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    const free = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    const freePort = free.port;
    free.stop(true);
    try {
      const p3 = proc(NODE, 3);
      const some = writeManifest(
        'p3.json',
        manifest(p3, [listener(p3, 1, freePort), listener(p3, 2, busy.port)]),
      );
      const partial = await runCli(['restore', '--json', some, ...sock]);
      expect(partial.code).toBe(4);
      expect(partial.json().counts).toMatchObject({ live: 1, failed: 1 });

      const p4 = proc(NODE, 4);
      const none = writeManifest('p4.json', manifest(p4, [listener(p4, 1, busy.port)]));
      const failed = await runCli(['restore', none, ...sock]);
      expect(failed.code).toBe(5);
      expect(failed.stdout).toMatch(/^state: +failed$/m);
    } finally {
      busy.stop(true);
    }
  });

  test('restore of an invalid manifest exits 1 with the issues', async () => {
    const path = join(a.dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ process: { hostId: 'x' }, endpoints: [] }));
    const result = await runCli(['restore', path, ...sock]);
    expect(result.code).toBe(1);
    expect(result.stderr).toStartWith('rewire: Cannot read manifest: ');
    expect(result.stderr).toContain('process.hostId');
  });

  test('restore over TCP without a token exits 1 with the 403 message', async () => {
    const path = writeManifest('p9.json', manifest(proc(NODE, 9), []));
    const result = await runCli(['restore', path, '--url', a.api.url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no http.token is configured');
  });

  test('cancel of an unknown restore exits 1 with the agent’s error', async () => {
    const result = await runCli(['cancel', 'nope', '--json', ...sock]);
    expect(result.code).toBe(1);
    expect(result.json().error).toMatchObject({ code: 'ERESTORE_NOT_FOUND', status: 404 });
  });
});
