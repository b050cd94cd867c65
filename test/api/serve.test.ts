import { afterAll, beforeAll, expect, test } from 'bun:test';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { bind, close, socket } from '../../ffi/socket.ts';
import { serveApi } from '../../src/api/serve.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { startApiAgent, type ApiAgent } from './helpers.ts';

let a: ApiAgent;

beforeAll(async () => {
  a = await startApiAgent();
});

afterAll(async () => {
  await a.stop();
});

test('the API socket is mode 0600', () => {
  expect(statSync(a.api.socketPath).mode & 0o777).toBe(0o600);
});

test('refuses to take over a socket that another agent answers on', async () => {
  const config = { ...a.config, http: { ...a.config.http, port: 0 } };
  await expect(serveApi(a.agent, config, silentLogger)).rejects.toThrow(
    `Cannot serve the API on '${a.api.socketPath}': another agent answers there; stop it first`,
  );
  expect((await a.unix('/livez')).status).toBe(200);
});

test('replaces a socket file left by an agent that died, and removes it on stop', async () => {
  const runtimeDir = join(a.dir, 'other-run');
  mkdirSync(runtimeDir, { mode: 0o700 });
  const stale = join(runtimeDir, 'api.sock');
  const fd = socket('unix', 'stream');
  bind(fd, { family: 'unix', path: stale });
  close(fd);
  expect(existsSync(stale)).toBe(true);

  const config = { ...a.config, runtimeDir, http: { ...a.config.http, port: 0 } };
  const api = await serveApi(a.agent, config, silentLogger);
  try {
    const response = await fetch('http://localhost/livez', { unix: stale } as RequestInit);
    expect(response.status).toBe(200);
  } finally {
    await api.stop();
  }
  expect(existsSync(stale)).toBe(false);
});

test('names the TCP address when its port is taken', async () => {
  const config = {
    ...a.config,
    runtimeDir: join(a.dir, 'third-run'),
    http: { ...a.config.http, port: a.api.port },
  };
  mkdirSync(config.runtimeDir, { mode: 0o700 });
  await expect(serveApi(a.agent, config, silentLogger)).rejects.toMatchObject({
    code: 'EADDRINUSE',
    message: `Cannot serve the API on '127.0.0.1:${a.api.port}': the port is in use`,
  });
});
