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
import { NotifyListener } from '../cli/notify-listener.ts';
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
