/**
 * `rewire agent` as a subprocess: readiness through NOTIFY_SOCKET, the API on its socket,
 * a clean stop on SIGTERM, and config errors as exit code 6.
 */
import { afterEach, beforeEach, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NotifyListener } from './notify-listener.ts';
import { cleanEnv, mainPath, runCli } from './run-cli.ts';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewire-agent-'));
  writeFileSync(join(dir, 'rewire.toml'), '# empty: defaults\n');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function agentArgs(): string[] {
  return [
    'agent',
    '--config',
    join(dir, 'rewire.toml'),
    '--listen',
    '127.0.0.1:0',
    '--http-port',
    '0',
    '--state-dir',
    join(dir, 'state'),
    '--runtime-dir',
    join(dir, 'run'),
  ];
}

function spawnAgent(notifySocket: string) {
  return Bun.spawn([process.execPath, mainPath, ...agentArgs()], {
    env: cleanEnv({ NOTIFY_SOCKET: notifySocket }),
    stdout: 'pipe',
    stderr: 'pipe',
  });
}

test('sends READY=1 to NOTIFY_SOCKET once the API answers, and STOPPING=1 on SIGTERM', async () => {
  using notify = new NotifyListener(join(dir, 'notify.sock'));
  const child = spawnAgent(notify.name);
  let exited = false;
  void child.exited.then(() => (exited = true));
  try {
    const ready = await notify.waitFor('READY=1', 20000, () => !exited);
    expect(ready).toContain(`MAINPID=${child.pid}`);
    expect(ready).toMatch(/^STATUS=Serving the API on http:\/\/127\.0\.0\.1:\d+$/m);

    const socketPath = join(dir, 'run', 'api.sock');
    const node = await fetch('http://localhost/v1/node', { unix: socketPath } as RequestInit);
    expect(node.status).toBe(200);

    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    await notify.waitFor('STOPPING=1', 1000);
    expect(existsSync(socketPath)).toBe(false);
    const logs = await new Response(child.stderr).text();
    const events = logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).event);
    expect(events).toEqual(
      expect.arrayContaining(['agent.starting', 'api.listening', 'agent.ready', 'agent.stopping']),
    );
  } finally {
    child.kill('SIGKILL');
  }
});

test('sends READY=1 to an abstract NOTIFY_SOCKET name', async () => {
  using notify = new NotifyListener(`@rewire-test-${process.pid}-${Date.now()}`);
  const child = spawnAgent(notify.name);
  let exited = false;
  void child.exited.then(() => (exited = true));
  try {
    await notify.waitFor('READY=1', 20000, () => !exited);
    child.kill('SIGINT');
    expect(await child.exited).toBe(0);
  } finally {
    child.kill('SIGKILL');
  }
});

test('exits 6 on an invalid config, naming the field and its source', async () => {
  const result = await runCli([...agentArgs(), '--http-port', '70000']);
  expect(result.code).toBe(6);
  expect(result.stderr).toBe(
    'rewire: Invalid config: http.port: must be 0..65535 (from flag --http-port)\n',
  );
});

test('exits 1 when the API port is taken, saying so', async () => {
  const busy = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  try {
    const args = agentArgs().map((a) => (a === '0' ? String(busy.port) : a));
    args[args.indexOf('--listen') + 1] = '127.0.0.1:0';
    const result = await runCli(args);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `rewire: Cannot serve the API on '127.0.0.1:${busy.port}': the port is in use`,
    );
  } finally {
    busy.stop(true);
  }
});
