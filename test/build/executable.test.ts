/**
 * SLOW (compiles two ~100 MiB executables, a few seconds each): `bun run build`'s targets, the
 * x64 executable started as an agent and queried with curl, and the arm64 one checked to be
 * an aarch64 ELF built from the npm runtime package, with nothing downloaded.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { buildTarget, elfMachine, targets } from '../../build/build.ts';
import type { Endpoint } from '../../src/model/types.ts';
import { NotifyListener } from '../cli/notify-listener.ts';
import { clientReport, pythonClient, writeManifest } from '../helpers/control.ts';
import { cleanEnv } from '../cli/run-cli.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewire-build-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function curl(url: string): Promise<string> {
  if (Bun.which('curl') === null) return (await fetch(url)).text();
  const child = Bun.spawn(['curl', '-sS', '--fail', url], { stdout: 'pipe', stderr: 'inherit' });
  const [text, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  expect(code).toBe(0);
  return text;
}

describe('compiled executables (slow)', () => {
  test('the x64 executable starts an agent that answers curl on /v1/node', async () => {
    const exe = await buildTarget(targets.x64!, join(dir, 'dist'));
    expect(elfMachine(exe)).toBe(62);

    writeFileSync(join(dir, 'rewire.toml'), '');
    using notify = new NotifyListener(join(dir, 'notify.sock'));
    const args = [
      'agent',
      '--config',
      join(dir, 'rewire.toml'),
      '--listen',
      '127.0.0.1:0',
      '--http-port',
      '0',
    ];
    args.push(
      '--state-dir',
      join(dir, 'state'),
      '--runtime-dir',
      join(dir, 'run'),
      '--node-id',
      '777',
    );
    const child = Bun.spawn([exe, ...args], {
      cwd: dir,
      env: cleanEnv({ NOTIFY_SOCKET: notify.name }),
      stdout: 'ignore',
      stderr: 'pipe',
    });
    let exited = false;
    void child.exited.then(() => (exited = true));
    try {
      const ready = await notify.waitFor('READY=1', 30000, () => !exited);
      const url = /STATUS=Serving the API on (\S+)/.exec(ready)![1]!;

      const node = JSON.parse(await curl(`${url}/v1/node`));
      expect(node).toMatchObject({
        nodeId: '777',
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      });

      // A restore through the executable: its poller thread is an embedded entry point, and
      // without it every wait on a socket would hang.
      const P = { hostId: 777n, pid: 4242, birthTime: 1n, generation: 1 };
      const end = (conn: number, role: 'connect' | 'accept', peer: number): Endpoint => ({
        id: { process: P, conn },
        peer: { process: P, conn: peer },
        role,
        family: 'inet',
        type: 'stream',
        protocol: 6,
        fds: [40 + conn],
        options: [],
        drained: new Uint8Array(0),
      });
      const m = {
        process: P,
        executable: 'rank',
        pid: 0,
        endpoints: [end(1, 'connect', 2), end(2, 'accept', 1)],
      };
      const client = Bun.spawn(
        [
          'python3',
          pythonClient,
          '--control',
          join(dir, 'run', 'control.sock'),
          '--manifest',
          writeManifest(m),
          '--exchange',
        ],
        { stdout: 'pipe', stderr: 'pipe' },
      );
      const timer = setTimeout(() => client.kill('SIGKILL'), 20_000);
      const [out, err, code] = await Promise.all([
        new Response(client.stdout).text(),
        new Response(client.stderr).text(),
        client.exited,
      ]);
      clearTimeout(timer);
      const report = clientReport({ code, stdout: out, stderr: err });
      expect(report.endpoints.map((e) => e.status)).toEqual(['live', 'live']);
      expect(report.exchange).toMatchObject({ pairs: 1, ok: true });

      child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('the arm64 executable is an aarch64 ELF built with the runtime from npm', async () => {
    const exe = await buildTarget(targets.arm64!, join(dir, 'dist'));
    expect(elfMachine(exe)).toBe(183);
  });
});
