/**
 * An agent started as `rewire agent` starts it (loadConfig, startAgent, serveApi), in this
 * test process, on free ports and in a temp directory; and requests over TCP or the socket.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startAgent, type RunningAgent } from '../../src/agent/agent.ts';
import { serveApi, type ApiServer } from '../../src/api/serve.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { AgentConfig } from '../../src/config/types.ts';
import { silentLogger } from '../../src/log/logger.ts';

export interface ApiAgent {
  agent: RunningAgent;
  api: ApiServer;
  config: AgentConfig;
  dir: string;
  /** A request over TCP to the API. */
  tcp(path: string, init?: RequestInit): Promise<Response>;
  /** A request over the API unix socket. */
  unix(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export interface ApiAgentOptions {
  nodeId?: bigint;
  token?: string;
  maxFrameBytes?: number;
}

const sharedKey = 'ab'.repeat(32);

export async function startApiAgent(options: ApiAgentOptions = {}): Promise<ApiAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'rewire-api-'));
  const flags: Record<string, string> = {
    listen: '127.0.0.1:0',
    'http-port': '0',
    'state-dir': join(dir, 'state'),
    'runtime-dir': join(dir, 'run'),
    'log-level': 'error',
  };
  if (options.nodeId !== undefined) flags['node-id'] = options.nodeId.toString();
  if (options.maxFrameBytes !== undefined) flags['max-frame-bytes'] = String(options.maxFrameBytes);
  const env: Record<string, string> = {};
  if (options.token !== undefined) env.REWIRE_HTTP_TOKEN = options.token;

  const keyFile = join(dir, 'cluster.key');
  writeFileSync(keyFile, sharedKey, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  flags['cluster-key-file'] = keyFile;

  const config = loadConfig({ flags, env, defaultConfigPath: join(dir, 'none.toml') });
  const agent = await startAgent(config, silentLogger);
  const api = await serveApi(agent, config, silentLogger);
  return {
    agent,
    api,
    config,
    dir,
    tcp: (path, init) => fetch(`${api.url}${path}`, init),
    unix: (path, init) =>
      fetch(`http://localhost${path}`, { ...init, unix: api.socketPath } as RequestInit),
    stop: async () => {
      await api.stop();
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON request body. */
export function json(
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): RequestInit {
  return {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  };
}

/** Polls `get` until `done` holds for its result, or fails after `ms`. */
export async function eventually<T>(
  get: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 5000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() > until)
      throw new Error(`Condition not met within ${ms} ms: ${JSON.stringify(value)}`);
    await Bun.sleep(10);
  }
}
