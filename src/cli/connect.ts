/**
 * How client commands find the local agent: `--url` (or REWIRE_URL) for TCP, `--socket` (or
 * REWIRE_SOCKET) for a unix socket, else the API socket in the runtime directory that the
 * agent's own config sources (file, environment, `--config`) name.
 */
import { existsSync } from 'node:fs';

import { loadClientSettings } from '../config/load.ts';
import { AgentClient, type Target } from './client.ts';
import type { CommandContext, OptionDef } from './command.ts';

/** Flags every client command takes. */
export const clientOptions: Record<string, OptionDef> = {
  json: { type: 'boolean', description: 'Print JSON for scripts instead of a table' },
  url: {
    type: 'string',
    value: 'URL',
    description: 'Agent API over TCP, e.g. http://127.0.0.1:7781 (env REWIRE_URL)',
  },
  socket: {
    type: 'string',
    value: 'PATH',
    description: 'Agent API unix socket (env REWIRE_SOCKET; default RUNTIME_DIR/api.sock)',
  },
  config: {
    type: 'string',
    value: 'FILE',
    description: 'Config file to find the socket in (default /etc/rewire/rewire.toml)',
  },
};

const systemSocket = '/run/rewire/api.sock';

/** The target the flags and environment name. */
export function resolveTarget(ctx: CommandContext): Target {
  const url = str(ctx.values.url) ?? (ctx.env.REWIRE_URL || undefined);
  if (url !== undefined) return { kind: 'tcp', url, token: tokenFor(ctx) };

  const socket = str(ctx.values.socket) ?? (ctx.env.REWIRE_SOCKET || undefined);
  if (socket !== undefined) return { kind: 'unix', path: socket };

  const configured = loadClientSettings({
    flags: { config: ctx.values.config },
    env: ctx.env,
  }).socketPath;
  const fallback = !existsSync(configured) && existsSync(systemSocket);
  return { kind: 'unix', path: fallback ? systemSocket : configured };
}

/** REWIRE_HTTP_TOKEN, else the token in the config file when it can be read. */
function tokenFor(ctx: CommandContext): string | undefined {
  if (ctx.env.REWIRE_HTTP_TOKEN) return ctx.env.REWIRE_HTTP_TOKEN;
  try {
    return loadClientSettings({ flags: { config: ctx.values.config }, env: ctx.env }).http.token;
  } catch {
    return undefined;
  }
}

export function clientFor(ctx: CommandContext): AgentClient {
  return new AgentClient(resolveTarget(ctx));
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
