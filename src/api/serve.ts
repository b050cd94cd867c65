/**
 * Serves the control API on TCP (config.http, loopback by default) and on the AF_UNIX socket
 * `${runtimeDir}/api.sock` (mode 0600). Over TCP, mutating routes need the bearer token;
 * over the socket, whose mode admits only the agent's user, they need nothing more.
 */
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { RewireError } from '../../ffi/errors.ts';
import type { AgentHandle } from '../agent/handle.ts';
import { apiSocketName, isLoopback } from '../config/load.ts';
import type { AgentConfig } from '../config/types.ts';
import type { Logger } from '../log/logger.ts';
import { createApi } from './app.ts';

export interface ApiServer {
  /** The TCP base URL, e.g. `http://127.0.0.1:7781` (with the bound port when 0 was asked). */
  url: string;
  port: number;
  socketPath: string;
  /** Stops both listeners, closing open connections, and removes the socket file. */
  stop(): Promise<void>;
}

type ServeConfig = Pick<AgentConfig, 'http' | 'runtimeDir' | 'maxFrameBytes'>;

/**
 * Starts both listeners.
 * @throws {RewireError} EADDRINUSE when the TCP port is taken, ESOCKET_IN_USE when another
 * agent answers on the socket
 */
export async function serveApi(
  handle: AgentHandle,
  config: ServeConfig,
  log: Logger,
): Promise<ApiServer> {
  const socketPath = join(config.runtimeDir, apiSocketName);
  const common = { maxBodyBytes: config.maxFrameBytes, log, socketPath };
  const tcpAddress = isLoopback(config.http.address) ? 'loopback' : 'other';
  const tcpApp = createApi(handle, {
    ...common,
    token: config.http.token,
    trusted: false,
    tcpAddress,
  });
  const unixApp = createApi(handle, { ...common, trusted: true });

  await removeStaleSocket(socketPath);
  const tcp = listenTcp(tcpApp.fetch, config.http);
  let unix: Bun.Server<undefined>;
  try {
    unix = Bun.serve({
      unix: socketPath,
      fetch: unixApp.fetch,
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    });
    chmodSync(socketPath, 0o600);
  } catch (err) {
    await tcp.stop(true);
    throw err;
  }

  const url = `http://${formatHost(config.http.address)}:${tcp.port}`;
  log.info('api.listening', { url, socket: socketPath, token: config.http.token !== undefined });
  return {
    url,
    port: tcp.port ?? 0,
    socketPath,
    stop: async () => {
      await Promise.all([tcp.stop(true), unix.stop(true)]);
      rmSync(socketPath, { force: true });
      log.info('api.stopped', { url, socket: socketPath });
    },
  };
}

function listenTcp(
  fetch: (req: Request) => Response | Promise<Response>,
  http: ServeConfig['http'],
) {
  try {
    return Bun.serve({
      hostname: http.address,
      port: http.port,
      fetch,
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    });
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'ELISTEN';
    const where = `${formatHost(http.address)}:${http.port}`;
    const detail =
      code === 'EADDRINUSE' ? 'the port is in use' : String((err as Error).message ?? err);
    throw new RewireError(code, `Cannot serve the API on '${where}': ${detail}`, { cause: err });
  }
}

function formatHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/**
 * Removes a socket file left by an agent that died, and refuses to take over one that a live
 * agent still answers on.
 */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await fetch('http://agent/livez', {
    unix: path,
    signal: AbortSignal.timeout(1000),
  }).then(
    () => true,
    () => false,
  );
  if (alive) {
    throw new RewireError(
      'ESOCKET_IN_USE',
      `Cannot serve the API on '${path}': another agent answers there; stop it first`,
    );
  }
  rmSync(path, { force: true });
}
