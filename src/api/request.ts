/**
 * The checks a request goes through before a route acts: authorisation of mutating routes,
 * the body's size and media type, JSON parsing and query parameters.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

import { ApiError } from './errors.ts';

export interface GuardOptions {
  /** Requests come over the unix socket: mutating routes need no token. */
  trusted: boolean;
  token: string | undefined;
  /** Named in the 403 message, so the caller knows where to go instead. */
  socketPath: string | undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Lets a mutating request through over the unix socket, or over TCP with the configured
 * bearer token; with no token configured, TCP may not mutate at all.
 */
export function mutationGuard(options: GuardOptions): MiddlewareHandler {
  return async (c, next) => {
    if (options.trusted) return next();

    if (options.token === undefined) {
      const where =
        options.socketPath === undefined
          ? 'the unix socket'
          : `the unix socket '${options.socketPath}'`;
      const message = `Cannot ${c.req.method} over TCP: no http.token is configured; use ${where} or set http.token`;
      throw new ApiError(403, 'EFORBIDDEN', message);
    }
    checkBearer(c, options.token);
    return next();
  };
}

/** Refuses a request without `Authorization: Bearer <token>` with 401. */
function checkBearer(c: Context, token: string): void {
  const given = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
  if (given !== undefined && timingSafeEqual(digest(given), digest(token))) return;

  c.header('WWW-Authenticate', 'Bearer realm="rewire"');
  const what = given === undefined ? 'needs' : 'has a wrong';
  const message = `Cannot ${c.req.method} ${c.req.path} over TCP: the request ${what} 'Authorization: Bearer <http.token>'`;
  throw new ApiError(401, 'EUNAUTHORIZED', message);
}

/**
 * For an API served off loopback: every route but the health probes needs the bearer token,
 * reading ones too.
 */
export function readGuard(token: string): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.path !== '/livez' && c.req.path !== '/readyz') checkBearer(c, token);
    return next();
  };
}

/**
 * For an API served on loopback: refuses requests whose Host header names anything but a
 * loopback host, so that a web page cannot reach the API through DNS rebinding.
 */
export function loopbackHostGuard(): MiddlewareHandler {
  return async (c, next) => {
    const host = (c.req.header('host') ?? '').toLowerCase().replace(/:\d+$/, '');
    if (host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host)) return next();
    const message = `Cannot serve Host '${host}': the API answers on loopback only to loopback names (localhost, 127.0.0.1, [::1])`;
    throw new ApiError(421, 'EHOST', message);
  };
}

/** Refuses bodies over `maxBytes` with 413, whether or not they declare a length. */
export function sizeLimit(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, 'EBODY_TOO_LARGE', `Request body is larger than ${maxBytes} bytes`);
    },
  });
}

/**
 * The request's JSON body.
 * @throws {ApiError} 415 when it is not declared as JSON, 400 when it does not parse
 */
export async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type)) {
    const got = type === '' ? 'no Content-Type' : `Content-Type '${type}'`;
    throw new ApiError(
      415,
      'EMEDIA_TYPE',
      `Request body must be JSON: send 'Content-Type: application/json', not ${got}`,
    );
  }

  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new ApiError(400, 'EBAD_JSON', `Cannot parse request body as JSON: ${detail}`);
  }
}

/**
 * The query parameters, refusing any not in `allowed`.
 * @throws {ApiError} 400 naming the unknown parameter
 */
export function queryParams(c: Context, allowed: readonly string[]): Record<string, string> {
  const query = c.req.query();
  for (const name of Object.keys(query)) {
    if (!allowed.includes(name)) {
      const expected =
        allowed.length === 0 ? 'this route takes none' : `expected ${allowed.join(', ')}`;
      throw new ApiError(400, 'EBAD_REQUEST', `Unknown query parameter '${name}': ${expected}`);
    }
  }
  return query;
}
