/**
 * The control API as a Hono app (SPEC §3.11): health, node, peers, placement, restores,
 * connections, parent-daemon host tables, capture and the cluster map, and Prometheus metrics,
 * all read from and acted on through an AgentHandle. JSON errors carry the RewireError's
 * stable code.
 */
import { Hono } from 'hono';

import type { AgentHandle } from '../agent/handle.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { ApiError, errorBody, statusOf } from './errors.ts';
import { loopbackHostGuard, mutationGuard, readGuard, sizeLimit } from './request.ts';
import {
  captureRoutes,
  healthRoutes,
  nodeRoutes,
  placementRoutes,
  restoreRoutes,
  RouteTable,
} from './routes.ts';

export interface ApiOptions {
  /** Bearer token that mutating routes need when the app is not `trusted`. */
  token?: string | undefined;
  /**
   * The app serves the unix socket, whose file mode already limits who connects: mutating
   * routes need no token. Over TCP leave it false.
   */
  trusted?: boolean;
  /** The unix socket's path, named in the message that refuses a mutation over TCP. */
  socketPath?: string;
  /**
   * TCP on a loopback address: refuse Host headers that are not loopback names (DNS
   * rebinding). Off loopback: every route but the health probes needs the token.
   */
  tcpAddress?: 'loopback' | 'other';
  /** Largest request body accepted (default 64 MiB). */
  maxBodyBytes?: number;
  log?: Logger;
}

const defaultMaxBodyBytes = 64 * 1024 * 1024;

/** The Hono app for one listener; make one per listener, since the auth rules differ. */
export function createApi(handle: AgentHandle, options: ApiOptions = {}): Hono {
  const app = new Hono();
  const log = options.log ?? silentLogger;
  const guard = mutationGuard({
    trusted: options.trusted ?? false,
    token: options.token,
    socketPath: options.socketPath,
  });
  if (options.tcpAddress === 'loopback') app.use('*', loopbackHostGuard());
  if (options.tcpAddress === 'other' && options.token !== undefined)
    app.use('*', readGuard(options.token));
  const routes = new RouteTable(app, [
    guard,
    sizeLimit(options.maxBodyBytes ?? defaultMaxBodyBytes),
  ]);

  healthRoutes(routes, handle);
  nodeRoutes(routes, handle);
  placementRoutes(routes, handle);
  restoreRoutes(routes, handle);
  captureRoutes(routes, handle);
  routes.finish();

  app.notFound((c) => {
    const err = new ApiError(404, 'ENOT_FOUND', `No route for ${c.req.method} ${c.req.path}`);
    return c.json(errorBody(err), 404);
  });
  app.onError((err, c) => {
    const status = statusOf(err);
    const fields = { method: c.req.method, path: c.req.path, status, error: err };
    if (status >= 500) log.error('api.request_failed', fields);
    else log.debug('api.request_refused', fields);
    return c.json(errorBody(err), status as 400);
  });
  return app;
}
