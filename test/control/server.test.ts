/**
 * The agent side of the control socket, driven by the Python client in subprocesses: many
 * fds in one restore, authorisation, a client that hangs up mid-restore, long-lived sessions.
 */
import { afterAll, beforeAll, expect, spyOn, test } from 'bun:test';
import { chmodSync } from 'node:fs';
import { dirname } from 'node:path';

import type { RunningAgent } from '../../src/agent/agent.ts';
import { encodeControlRequest } from '../../src/model/codec.ts';
import { processKey } from '../../src/model/ids.ts';
import type { Endpoint, Manifest, ProcessId } from '../../src/model/types.ts';
import {
  endpoint,
  manifest,
  openFdCount,
  proc,
  startCluster,
  stopAll,
} from '../helpers/cluster.ts';
import {
  clientReport,
  lineReader,
  openSessions,
  pythonClient,
  runPythonClient,
  spawnPythonClient,
  waitFor,
  writeManifest,
} from '../helpers/control.ts';

let agents: RunningAgent[];
let agent: RunningAgent;

beforeAll(async () => {
  agents = await startCluster([7n]);
  agent = agents[0]!;
  // Let the first spawn allocate whatever Bun keeps for child processes before fds are counted.
  await Bun.spawn(['python3', '-c', 'pass'], { stdout: 'ignore', stderr: 'ignore' }).exited;
});

afterAll(() => stopAll(agents));

/** `pairs` connections between endpoints of process `p`, paired on this node. */
function localPairs(p: ProcessId, pairs: number, firstConn = 1): Endpoint[] {
  const out: Endpoint[] = [];
  for (let i = 0; i < pairs; i++) {
    const c = firstConn + 2 * i;
    out.push(endpoint(p, c, 'connect', [p, c + 1]), endpoint(p, c + 1, 'accept', [p, c]));
  }
  return out;
}

test('one restore hands 1,000 live fds to a client, and the agent keeps none', async () => {
  const p = proc(7n, 7100);
  const before = openFdCount();

  const run = await runPythonClient(agent, writeManifest(manifest(p, localPairs(p, 500))), [
    '--exchange',
  ]);
  const report = clientReport(run);

  expect(report.done).toMatchObject({ code: '', live: 1000, dead: 0, failed: 0 });
  expect(report.endpoints).toHaveLength(1000);
  expect(report.fd_count).toBe(1000);
  expect(report.unclaimed_fds).toBe(0);
  expect(new Set(report.endpoints.map((e) => e.fd)).size).toBe(1000);
  expect(report.exchange).toEqual({ pairs: 500, ok: true, errors: [] });
  await waitFor(() => openFdCount() <= before, 'the agent to close its copies of the fds');
}, 60_000);

test('a request for a pid of another uid is refused with EPERM and changes nothing', async () => {
  // Stands in for an operator granting uid 65534 access to the control socket: the agent's
  // runtime directory is 0700 and its socket reachable by the agent's user only.
  chmodSync(dirname(dirname(agent.controlSocketPath)), 0o711);
  chmodSync(dirname(agent.controlSocketPath), 0o711);
  chmodSync(agent.controlSocketPath, 0o666);
  const start = spyOn(agent.engine, 'start');
  const before = openFdCount();
  try {
    const p = proc(7n, 7200);
    const mine = { process: processKey(p) };
    const theirs = writeManifest(manifest(p, localPairs(p, 1), { pid: 1 }));

    const refused = clientReport(await runPythonClient(agent, theirs, ['--setuid', '65534']));

    expect(refused.uid).toBe(65534);
    expect(refused.done.code).toBe('EPERM');
    expect(refused.done.message).toBe('Cannot restore pid 1: uid 65534 does not own it');
    expect(refused.endpoints).toEqual([]);
    expect(start).not.toHaveBeenCalled();
    expect(agent.restores()).toEqual([]);
    expect(agent.connections(mine)).toEqual([]);
    await waitFor(() => openFdCount() <= before, 'the refused session to be closed');

    // The same uid restoring itself (pid 0: the caller) is let through.
    const own = writeManifest(manifest(p, localPairs(p, 1)));
    const allowed = clientReport(await runPythonClient(agent, own, ['--setuid', '65534']));
    expect(allowed.done).toMatchObject({ code: '', live: 2 });
    expect(start).toHaveBeenCalledTimes(1);
    expect(agent.connections(mine)).toHaveLength(2);
  } finally {
    start.mockRestore();
  }
});

test('a client that hangs up mid-restore leaves no fd open in the agent', async () => {
  const p = proc(7n, 7300);
  const absent = proc(7n, 7301);
  const m = manifest(p, [
    ...localPairs(p, 2),
    endpoint(p, 5, 'listen', undefined, {
      local: { family: 'inet', address: '127.0.0.1', port: 0 },
    }),
    // Its peer never registers on this node, so the restore stays running.
    endpoint(p, 6, 'connect', [absent, 1]),
  ]);
  const before = openFdCount();

  const client = spawnPythonClient(agent, writeManifest(m), [
    '--send-only',
    '--deadline-ms',
    '60000',
  ]);
  expect(await lineReader(client.stdout)()).toBe('{"sent": true}');
  await waitFor(
    () => [...agent.engine.restores.values()].some((r) => r.counts().live === 5),
    'the agent to settle the local endpoints',
  );
  const restore = [...agent.engine.restores.values()][0]!;
  expect(restore.state).toBe('running');
  client.kill('SIGKILL');
  await client.exited;

  await waitFor(
    () => agent.engine.restores.size === 0 && openFdCount() <= before,
    'the agent to cancel the restore and close its fds',
  );
  expect(restore.state).toBe('cancelled');
  const pending = restore.tasks.find((t) => t.endpoint.id.conn === 6)!;
  expect([pending.state, pending.code]).toEqual(['failed', 'ECANCELLED']);
});

for (const stray of [false, true]) {
  const name = stray
    ? 'a keep_open session whose process sent a stray packet still ends when the process goes away'
    : 'a keep_open session stays open after RestoreDone until the process goes away';
  test(name, async () => {
    const p = proc(7n, stray ? 7500 : 7400);
    const key = processKey(p);
    const args = ['--keep-open', ...(stray ? ['--stray-packet'] : [])];
    const client = spawnPythonClient(agent, writeManifest(manifest(p, localPairs(p, 1))), args);
    const readLine = lineReader(client.stdout);

    const report = JSON.parse((await readLine()) ?? '{}');
    expect(report.done).toMatchObject({ code: '', live: 2 });
    await waitFor(() => openSessions(agent).has(key), 'the session to be registered');
    expect(openSessions(agent).get(key)!.pid).toBe(report.pid);
    expect(client.exitCode).toBeNull();

    client.kill('SIGKILL');
    await client.exited;
    await waitFor(() => !openSessions(agent).has(key), 'the agent to notice the process is gone');
  });
}

/** Sends one raw request frame (optionally with an fd attached) and returns the reply. */
async function rawRequest(body: Uint8Array, attachFd = false) {
  const script = `
import json, os, socket, struct, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import rewire_client as rc
s = rc.Session(sys.argv[2])
body = bytes.fromhex(sys.argv[3])
data = struct.pack(">I", len(body)) + body
if sys.argv[4] == "fd":
    r, w = os.pipe()
    s.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", r))])
else:
    s.sock.send(data)
reply = s.next_reply(time.monotonic() + 10)
print(json.dumps(reply[1] if reply else None))
`;
  const args = [pythonClient, agent.controlSocketPath, Buffer.from(body).toString('hex')];
  const child = Bun.spawn(['python3', '-c', script, ...args, attachFd ? 'fd' : 'nofd'], {
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [out, err] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (!out.trim()) throw new Error(`raw client printed nothing: ${err}`);
  return JSON.parse(out) as { code: string; message: string; restoreId: string } | null;
}

test('bad requests are answered with a RestoreDone that says why, and start nothing', async () => {
  const p = proc(7n, 7600);
  const request = (m: Manifest) =>
    encodeControlRequest({
      kind: 'restore',
      restore: { manifest: m, deadlineMs: 0, keepOpen: false },
    });
  const twice = manifest(p, [
    endpoint(p, 1, 'connect', [p, 2], { fds: [11] }),
    endpoint(p, 2, 'accept', [p, 1], { fds: [11] }),
  ]);
  const start = spyOn(agent.engine, 'start');
  try {
    const garbage = await rawRequest(new Uint8Array([0xff, 0xff, 0xff]));
    expect(garbage).toMatchObject({ code: 'EFRAME', restoreId: '' });
    expect(garbage!.message).toStartWith('Cannot decode control request');

    const invalid = await rawRequest(request(twice));
    expect(invalid).toMatchObject({ code: 'EMANIFEST' });
    expect(invalid!.message).toContain('endpoints[1].fds[0]: fd 11 appears twice');

    const withFd = await rawRequest(request(manifest(p, localPairs(p, 1))), true);
    expect(withFd).toMatchObject({ code: 'ECTRUNC' });

    expect(start).not.toHaveBeenCalled();
  } finally {
    start.mockRestore();
  }
});

test('a second session for a process whose restore is running is refused', async () => {
  const p = proc(7n, 7700);
  const m = manifest(p, [endpoint(p, 1, 'connect', [proc(7n, 7701), 1])]);
  const file = writeManifest(m);
  const first = spawnPythonClient(agent, file, ['--send-only', '--deadline-ms', '60000']);
  try {
    expect(await lineReader(first.stdout)()).toBe('{"sent": true}');
    await waitFor(() => agent.engine.restores.size === 1, 'the first restore to start');

    const second = clientReport(await runPythonClient(agent, file));

    expect(second.done.code).toBe('ERESTORE_ACTIVE');
    expect(second.endpoints).toEqual([]);
  } finally {
    first.kill('SIGKILL');
    await first.exited;
  }
  await waitFor(() => agent.engine.restores.size === 0, 'the first restore to be cancelled');
});
