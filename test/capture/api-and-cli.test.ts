/** Capture through the agent API and through `rewire capture`, and the frames agents exchange. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodePeerFrame, encodePeerFrame } from '../../src/model/codec.ts';
import type { PeerFrame } from '../../src/model/frames.ts';
import { parseManifest } from '../../src/model/schema.ts';
import { startApiAgent, type ApiAgent } from '../api/helpers.ts';
import { cleanEnv, runCli } from '../cli/run-cli.ts';
import { endpoint, manifest, proc } from '../helpers/cluster.ts';
import { runState, startOwner, stopOwners, type Owner } from './helpers.ts';

let api: ApiAgent;
let owner: Owner<{ port: number }>;
let peer: Owner;

beforeAll(async () => {
  api = await startApiAgent({ nodeId: 777n });
  owner = await startOwner<{ port: number }>(['server']);
  peer = await startOwner(['client', String(owner.info.port)]);
});

afterAll(async () => {
  await stopOwners();
  await api.stop();
});

describe('GET /v1/processes/:pid/sockets', () => {
  test('answers the capture over the unix socket, with this node id', async () => {
    const response = await api.unix(`/v1/processes/${owner.pid}/sockets`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body.manifest.process).toMatchObject({ hostId: '777', pid: owner.pid, generation: 1 });
    expect(body.manifest.endpoints.map((e: any) => e.role)).toContain('listen');
    expect(body.queues.receive).toBe(false);
  });

  test('is refused over TCP without the token, as capture reads another process', async () => {
    const response = await api.tcp(`/v1/processes/${owner.pid}/sockets`);
    expect(response.status).toBe(403);
    expect(((await response.json()) as any).error.code).toBe('EFORBIDDEN');
  });

  test('answers 404 ENOPROC for an unknown pid and 400 for something that is not a pid', async () => {
    const pid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
    const unknown = await api.unix(`/v1/processes/${pid}/sockets`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.code).toBe('ENOPROC');
    const bad = await api.unix('/v1/processes/abc/sockets');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error).toEqual({
      code: 'EBAD_REQUEST',
      message: "Cannot capture pid 'abc': expected a process id",
    });
  });
});

describe('GET /v1/cluster/connections', () => {
  test('lists the connections of the captured processes, here both ends on one node', async () => {
    await api.unix(`/v1/processes/${peer.pid}/sockets`);
    const response = await api.tcp('/v1/cluster/connections');
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body.nodes).toEqual([{ nodeId: '777', processes: 2 }]);
    const pair = body.connections.find(
      (c: any) => c.from.pid === peer.pid && c.to.pid === owner.pid,
    );
    expect(pair).toMatchObject({ joinedBy: 'address', peerCaptured: true });
  });
});

describe('rewire capture', () => {
  test('prints the capture, writes it and the manifest alone to files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rewire-capture-'));
    const out = join(dir, 'capture.json');
    const only = join(dir, 'manifest.json');
    const args = ['capture', '--pid', String(owner.pid), '--node-id', '9'];
    const printed = await runCli(args);
    expect(printed.code).toBe(0);
    expect(printed.json().manifest.process.hostId).toBe('9');

    const written = await runCli([...args, '--out', out, '--manifest', only]);
    expect([written.code, written.stdout]).toEqual([0, '']);
    expect(written.stderr).toContain(`endpoint(s) of pid ${owner.pid} into '${out}'`);
    const capture = JSON.parse(readFileSync(out, 'utf8'));
    expect(capture.manifest).toEqual(JSON.parse(readFileSync(only, 'utf8')));
    expect(parseManifest(capture.manifest).process.pid).toBe(owner.pid);
  });

  test('takes the node id from the config environment when no flag gives it', async () => {
    const env = cleanEnv({ REWIRE_NODE_ID: '0x10' });
    const r = await runCli(['capture', '--pid', String(owner.pid)], { env });
    expect(r.code).toBe(0);
    expect(r.json().manifest.nodeId).toBe('16');
  });

  test('--drain --leave-frozen leaves the process stopped, and --resume continues it', async () => {
    const args = ['capture', '--pid', String(peer.pid), '--node-id', '9'];
    const frozen = await runCli([...args, '--drain', '--leave-frozen']);
    expect(frozen.code).toBe(0);
    expect(frozen.json().drain).toMatchObject({ resumed: false, wasStopped: false });
    expect(runState(peer.pid)).toBe('T');

    const resumed = await runCli(['capture', '--pid', String(peer.pid), '--resume']);
    expect([resumed.code, resumed.json()]).toEqual([0, { pid: peer.pid, resumed: true }]);
    expect(runState(peer.pid)).not.toBe('T');
  });

  test('refuses a wrong command line with exit code 2', async () => {
    const cases: [string[], string][] = [
      [['capture'], 'Cannot capture: --pid PID is required'],
      [['capture', '--pid', 'x1'], "Cannot capture: --pid 'x1' is not a process id"],
      [['capture', '--pid', '1', '--leave-frozen'], 'Cannot capture: --leave-frozen needs --drain'],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect([r.code, r.stderr.trim()]).toEqual([2, `rewire: ${message}`]);
    }
  });
});

describe('the Query and Captures frames', () => {
  test('round-trip through protobuf, manifests and all', () => {
    const P = proc(5n, 50);
    const m = manifest(P, [endpoint(P, 1, 'connect', [proc(6n, 60), 2])]);
    const frames: PeerFrame[] = [
      { kind: 'query', query: { proof: new Uint8Array(32).fill(9) } },
      { kind: 'captures', captures: { manifests: [m, { ...m, endpoints: [] }] } },
      { kind: 'captures', captures: { manifests: [] } },
    ];
    for (const f of frames) expect(decodePeerFrame(encodePeerFrame(f))).toEqual(f);
  });
});
