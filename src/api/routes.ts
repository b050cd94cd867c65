/**
 * The API's routes, each a thin step from HTTP to the AgentHandle: check the input, call one
 * handle method, answer with its JSON view.
 */
import type { Context, Hono, MiddlewareHandler } from 'hono';

import type { AgentHandle, ConnectionFilter } from '../agent/handle.ts';
import { parseProcessKey } from '../model/ids.ts';
import { parseManifest, parsePlacement, placementToJson } from '../model/schema.ts';
import { ApiError } from './errors.ts';
import { jsonBody, queryParams } from './request.ts';
import { exposition } from '../metrics/registry.ts';

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** Registers routes and remembers each path's methods, for 405 answers. */
export class RouteTable {
  readonly #methods = new Map<string, Method[]>();

  constructor(
    private readonly app: Hono,
    /** Middleware that runs before every mutating route (auth, size limit). */
    private readonly mutating: MiddlewareHandler[],
  ) {}

  /** `guarded`: a GET that needs the same authorisation as a mutating route. */
  add(
    method: Method,
    path: string,
    handler: (c: Context) => Response | Promise<Response>,
    options: { guarded?: boolean } = {},
  ): void {
    const before = method === 'GET' && !options.guarded ? [] : this.mutating;
    const on = this.app.on.bind(this.app) as (m: string, p: string, ...h: unknown[]) => void;
    on(method, path, ...before, handler);
    this.#methods.set(path, [...(this.#methods.get(path) ?? []), method]);
  }

  /** Answers 405 with `Allow` for other methods on known paths. Call after every `add`. */
  finish(): void {
    for (const [path, methods] of this.#methods) {
      const allow = methods.includes('GET') ? [...methods, 'HEAD'] : methods;
      this.app.all(path, (c) => {
        c.header('Allow', allow.join(', '));
        throw new ApiError(
          405,
          'EMETHOD',
          `Method ${c.req.method} is not allowed on ${path}: use ${allow.join(', ')}`,
        );
      });
    }
  }
}

export function healthRoutes(routes: RouteTable, handle: AgentHandle): void {
  routes.add('GET', '/livez', (c) => c.json({ status: 'ok' }));
  routes.add('GET', '/readyz', (c) => {
    if (!handle.ready())
      throw new ApiError(503, 'ENOT_READY', 'Agent is not ready: its listeners are still starting');
    return c.json({ status: 'ready' });
  });
  routes.add('GET', '/metrics', (c) => {
    queryParams(c, []);
    return c.body(handle.metricsText(), 200, { 'Content-Type': exposition });
  });
}

export function nodeRoutes(routes: RouteTable, handle: AgentHandle): void {
  routes.add('GET', '/v1/node', (c) => c.json(handle.node()));
  routes.add('GET', '/v1/peers', (c) => c.json({ peers: handle.peers() }));
  routes.add('GET', '/v1/hosts', (c) => c.json({ hosts: handle.hosts() }));
  routes.add('GET', '/v1/connections', (c) =>
    c.json({ connections: handle.connections(connectionFilter(c)) }),
  );
}

const connectionStates = ['live', 'dead'];

function connectionFilter(c: Context): ConnectionFilter {
  const query = queryParams(c, ['process', 'node', 'state']);
  if (query.process !== undefined) parseProcessKey(query.process);
  if (query.node !== undefined && !/^\d{1,20}$/.test(query.node)) {
    throw new ApiError(
      400,
      'EBAD_REQUEST',
      `Cannot filter by node '${query.node}': expected a decimal node id`,
    );
  }
  if (query.state !== undefined && !connectionStates.includes(query.state)) {
    throw new ApiError(
      400,
      'EBAD_REQUEST',
      `Cannot filter by state '${query.state}': expected live or dead`,
    );
  }
  return query;
}

export function placementRoutes(routes: RouteTable, handle: AgentHandle): void {
  routes.add('GET', '/v1/placement', (c) => {
    const placement = handle.placement();
    if (placement === undefined) {
      throw new ApiError(404, 'ENO_PLACEMENT', 'No placement is set: PUT one to /v1/placement');
    }
    return c.json(placementToJson(placement) as object);
  });
  routes.add('PUT', '/v1/placement', async (c) => {
    const placement = parsePlacement(await jsonBody(c));
    handle.setPlacement(placement);
    return c.json(placementToJson(handle.placement() ?? placement) as object);
  });
}

export function restoreRoutes(routes: RouteTable, handle: AgentHandle): void {
  routes.add('POST', '/v1/restores', async (c) => {
    const deadlineMs = deadlineOf(queryParams(c, ['deadlineMs']).deadlineMs);
    const manifest = parseManifest(await jsonBody(c));
    const view = handle.startRestore(manifest, deadlineMs === undefined ? {} : { deadlineMs });
    c.header('Location', `/v1/restores/${encodeURIComponent(view.id)}`);
    return c.json(view, 202);
  });
  routes.add('GET', '/v1/restores', (c) => c.json({ restores: handle.restores() }));
  routes.add('GET', '/v1/restores/:id', (c) => c.json(handle.restore(c.req.param('id') ?? '')));
  routes.add('DELETE', '/v1/restores/:id', (c) =>
    c.json(handle.cancelRestore(c.req.param('id') ?? '')),
  );
}

/**
 * Capture reads another process's sockets with the agent's privileges, so it is authorised
 * like a mutation: over the unix socket, or over TCP with the token.
 */
export function captureRoutes(routes: RouteTable, handle: AgentHandle): void {
  const capture = async (c: Context) => {
    queryParams(c, []);
    return c.json(await handle.captureProcess(pidOf(c.req.param('pid') ?? '')));
  };
  routes.add('GET', '/v1/processes/:pid/sockets', capture, { guarded: true });
  routes.add('GET', '/v1/cluster/connections', async (c) => {
    queryParams(c, []);
    return c.json(await handle.clusterConnections());
  });
}

function pidOf(text: string): number {
  const pid = /^\d{1,10}$/.test(text) ? Number(text) : 0;
  if (pid > 0 && pid <= 0x3fff_ffff) return pid;
  throw new ApiError(400, 'EBAD_REQUEST', `Cannot capture pid '${text}': expected a process id`);
}

function deadlineOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d{1,9}$/.test(text) ? Number(text) : 0;
  if (ms > 0) return ms;
  throw new ApiError(
    400,
    'EBAD_REQUEST',
    `Cannot use deadlineMs '${text}': expected milliseconds, 1..999999999`,
  );
}
