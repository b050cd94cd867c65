/**
 * Every API route, with real HTTP requests over TCP and the unix socket against an agent
 * started as `rewire agent` starts it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';

import type { ConnectionView, NodeView, RestoreView } from '../../src/agent/handle.ts';
import { createApi } from '../../src/api/app.ts';
import { processKey } from '../../src/model/ids.ts';
import { manifestToJson, placementToJson } from '../../src/model/schema.ts';
import type { Placement } from '../../src/model/types.ts';
import { endpoint, manifest, proc } from '../helpers/cluster.ts';
import { eventually, json, startApiAgent, type ApiAgent } from './helpers.ts';

const NODE = 5151n;
let a: ApiAgent;

beforeAll(async () => {
  a = await startApiAgent({ nodeId: NODE, maxFrameBytes: 64 * 1024 });
});

afterAll(async () => {
  await a.stop();
});

async function body(response: Response): Promise<any> {
  return response.json();
}

const p1 = proc(NODE, 1000);
const p2 = proc(NODE, 2000);
const absent = proc(NODE, 3000);

function placement(version: bigint): Placement {
  return {
    version,
    nodes: [{ nodeId: NODE, address: '127.0.0.1', port: a.agent.peerPort, name: 'self' }],
    processes: [p1, p2, absent].map((process) => ({ process, nodeId: NODE })),
    replacements: [],
  };
}

describe('health', () => {
  test('GET /livez answers ok on both listeners', async () => {
    for (const send of [a.tcp, a.unix]) {
      const response = await send('/livez');
      expect(response.status).toBe(200);
      expect(await body(response)).toEqual({ status: 'ok' });
    }
  });

  test('GET /readyz answers ready once the listeners are up', async () => {
    const response = await a.tcp('/readyz');
    expect(response.status).toBe(200);
    expect(await body(response)).toEqual({ status: 'ready' });
  });
});

describe('node and peers', () => {
  test('GET /v1/node shows the node id, the bound advertise port and the version', async () => {
    const node = (await body(await a.tcp('/v1/node'))) as NodeView;
    expect(node.nodeId).toBe(NODE.toString());
    expect(node.advertise).toEqual({ address: '127.0.0.1', port: a.agent.peerPort });
    expect(node.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(node.localPolicy).toBe('keep-family');
  });

  test('GET /v1/peers lists no peers on a single node', async () => {
    expect(await body(await a.tcp('/v1/peers'))).toEqual({ peers: [] });
  });

  test('GET /v1/hosts lists no parent daemons before any restore', async () => {
    expect(await body(await a.unix('/v1/hosts'))).toEqual({ hosts: [] });
  });
});

describe('placement', () => {
  test('GET /v1/placement is 404 until a placement is set', async () => {
    const response = await a.tcp('/v1/placement');
    expect(response.status).toBe(404);
    expect((await body(response)).error.code).toBe('ENO_PLACEMENT');
  });

  test('PUT /v1/placement over the socket sets it, and GET returns it', async () => {
    const doc = placementToJson(placement(1n));
    const put = await a.unix('/v1/placement', json('PUT', doc));
    expect(put.status).toBe(200);
    expect(await body(put)).toEqual(doc);
    expect(await body(await a.tcp('/v1/placement'))).toEqual(doc);
    expect(((await body(await a.tcp('/v1/node'))) as NodeView).placementVersion).toBe('1');
  });

  test('PUT /v1/placement refuses a version that is not newer with 409', async () => {
    const response = await a.unix('/v1/placement', json('PUT', placementToJson(placement(1n))));
    expect(response.status).toBe(409);
    expect((await body(response)).error.code).toBe('EPLACEMENT_STALE');
  });

  test('PUT /v1/placement refuses an invalid placement with 400 and zod issues', async () => {
    const response = await a.unix('/v1/placement', json('PUT', { version: 'x', nodes: 3 }));
    expect(response.status).toBe(400);
    const { error } = await body(response);
    expect(error.code).toBe('EPLACEMENT');
    expect(error.issues.map((i: { path: string }) => i.path)).toEqual(
      expect.arrayContaining(['version', 'nodes']),
    );
  });

  test('PUT /v1/placement refuses a body that is not JSON with 400, and no JSON type with 415', async () => {
    const bad = await a.unix('/v1/placement', json('PUT', '{"version": '));
    expect(bad.status).toBe(400);
    expect((await body(bad)).error.code).toBe('EBAD_JSON');

    const text = await a.unix('/v1/placement', {
      method: 'PUT',
      body: '{}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect((await body(text)).error).toMatchObject({ code: 'EMEDIA_TYPE' });
    expect((await body(await a.tcp('/v1/placement'))).version).toBe('1');
  });
});

describe('restores and connections', () => {
  let first: RestoreView;

  test('POST /v1/restores starts a restore: 202, Location, and the view', async () => {
    const m1 = manifestToJson(
      manifest(p1, [endpoint(p1, 1, 'connect', [p2, 1])], { executable: 'orted' }),
    );
    const response = await a.unix('/v1/restores', json('POST', m1));
    expect(response.status).toBe(202);
    first = await body(response);
    expect(response.headers.get('location')).toBe(`/v1/restores/${first.id}`);
    expect(first.process).toBe(processKey(p1));
    expect(first.endpoints).toHaveLength(1);
  });

  test('GET /v1/restores/:id shows per-endpoint progress until both ends are paired', async () => {
    const m2 = manifestToJson(manifest(p2, [endpoint(p2, 1, 'accept', [p1, 1])]));
    expect((await a.unix('/v1/restores', json('POST', m2))).status).toBe(202);

    const view = await eventually(
      async () => (await body(await a.tcp(`/v1/restores/${first.id}`))) as RestoreView,
      (v) => v.state !== 'running',
    );
    expect(view.state).toBe('done');
    expect(view.counts).toEqual({ pending: 0, live: 1, dead: 0, failed: 0 });
    expect(view.endpoints[0]).toMatchObject({ state: 'live', how: 'local-pair' });
  });

  test('GET /v1/restores lists the restores', async () => {
    const { restores } = await body(await a.tcp('/v1/restores'));
    expect(restores.map((r: RestoreView) => r.id)).toContain(first.id);
  });

  test('GET /v1/connections filters by process, node and state', async () => {
    const all = (await body(await a.tcp('/v1/connections'))).connections as ConnectionView[];
    expect(all.map((c) => c.process).sort()).toEqual([processKey(p1), processKey(p2)].sort());
    expect(all.every((c) => c.sameNode)).toBe(true);

    const one = await body(
      await a.tcp(`/v1/connections?process=${encodeURIComponent(processKey(p1))}`),
    );
    expect(one.connections).toHaveLength(1);
    expect(one.connections[0].executable).toBe('orted');
    expect(
      (await body(await a.tcp(`/v1/connections?node=${NODE}&state=live`))).connections,
    ).toHaveLength(2);
    expect((await body(await a.tcp('/v1/connections?state=dead'))).connections).toHaveLength(0);
    expect((await body(await a.tcp('/v1/connections?node=1'))).connections).toHaveLength(0);
  });

  test('GET /v1/connections refuses a bad filter with 400', async () => {
    const cases: [string, string][] = [
      ['state=closed', "Cannot filter by state 'closed'"],
      ['node=abc', "Cannot filter by node 'abc'"],
      ['process=12', "Cannot parse process id '12'"],
      ['proc=1', "Unknown query parameter 'proc'"],
    ];
    for (const [query, message] of cases) {
      const response = await a.tcp(`/v1/connections?${query}`);
      expect(response.status).toBe(400);
      expect((await body(response)).error.message).toStartWith(message);
    }
  });

  test('GET /v1/hosts shows the parent daemon, with no remote entries for a same-node peer', async () => {
    const { hosts } = await body(await a.tcp('/v1/hosts'));
    expect(hosts).toEqual([{ process: processKey(p1), executable: 'orted', pid: 0, entries: [] }]);
  });

  test('DELETE /v1/restores/:id cancels a running restore', async () => {
    const m = manifestToJson(manifest(absent, [endpoint(absent, 1, 'accept', [p1, 7])]));
    const started = (await body(
      await a.unix('/v1/restores?deadlineMs=30000', json('POST', m)),
    )) as RestoreView;
    expect(started.state).toBe('running');

    const response = await a.unix(`/v1/restores/${started.id}`, { method: 'DELETE' });
    expect(response.status).toBe(200);
    const view = (await body(response)) as RestoreView;
    expect(view.endpoints[0]).toMatchObject({ state: 'failed', code: 'ECANCELLED' });
    expect(view.state).toBe('cancelled');
  });

  test('POST /v1/restores refuses an invalid manifest with 400 and its issues', async () => {
    const response = await a.unix('/v1/restores', json('POST', { process: {}, endpoints: [{}] }));
    expect(response.status).toBe(400);
    const { error } = await body(response);
    expect(error.code).toBe('EMANIFEST');
    expect(error.issues.length).toBeGreaterThan(0);
    expect(error.issues[0]).toHaveProperty('path');
  });

  test('POST /v1/restores refuses a body over the limit with 413', async () => {
    const response = await a.unix('/v1/restores', json('POST', { pad: 'x'.repeat(70 * 1024) }));
    expect(response.status).toBe(413);
    expect((await body(response)).error.code).toBe('EBODY_TOO_LARGE');
  });

  test('POST /v1/restores refuses a bad deadline with 400', async () => {
    const response = await a.unix('/v1/restores?deadlineMs=0', json('POST', {}));
    expect(response.status).toBe(400);
    expect((await body(response)).error.message).toStartWith("Cannot use deadlineMs '0'");
  });

  test('GET and DELETE of an unknown restore are 404', async () => {
    for (const [send, init] of [
      [a.tcp, undefined],
      [a.unix, { method: 'DELETE' }],
    ] as const) {
      const response = await send('/v1/restores/nope', init);
      expect(response.status).toBe(404);
      expect((await body(response)).error.code).toBe('ERESTORE_NOT_FOUND');
    }
  });
});

describe('metrics', () => {
  test('GET /metrics is Prometheus text with build info and restore counts', async () => {
    const response = await a.tcp('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    expect(text).toMatch(/^rewire_build_info\{version="[^"]+",arch="[a-z0-9]+"\} 1$/m);
    expect(text).toContain('rewire_restores_total{result="done"} 2');
    expect(text).toContain('rewire_restores_total{result="cancelled"} 1');
    expect(text).toContain('rewire_endpoints_total{result="live"} 2');
    expect(text).toContain('# TYPE rewire_restore_duration_seconds histogram');
  });
});

describe('routing', () => {
  test('an unknown route is 404 with a JSON error', async () => {
    const response = await a.tcp('/v2/nothing');
    expect(response.status).toBe(404);
    expect(await body(response)).toEqual({
      error: { code: 'ENOT_FOUND', message: 'No route for GET /v2/nothing' },
    });
  });

  test('a known route with another method is 405 with Allow', async () => {
    const response = await a.unix('/v1/node', { method: 'DELETE' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect((await body(response)).error.code).toBe('EMETHOD');
  });
});

describe('auth over TCP without a token', () => {
  test('mutating routes are refused with 403, pointing at the unix socket', async () => {
    const requests: [string, RequestInit][] = [
      ['/v1/placement', json('PUT', placementToJson(placement(9n)))],
      ['/v1/restores', json('POST', {})],
      ['/v1/restores/x', { method: 'DELETE' }],
    ];
    for (const [path, init] of requests) {
      const response = await a.tcp(path, init);
      expect(response.status).toBe(403);
      const { error } = await body(response);
      expect(error.code).toBe('EFORBIDDEN');
      expect(error.message).toContain(
        `use the unix socket '${a.api.socketPath}' or set http.token`,
      );
    }
    expect((await body(await a.tcp('/v1/placement'))).version).toBe('1');
  });
});

describe('auth over TCP with a token', () => {
  const token = 'test-token-0123456789';
  let b: ApiAgent;

  beforeAll(async () => {
    b = await startApiAgent({ token });
  });

  afterAll(async () => {
    await b.stop();
  });

  test('a mutating request without the token is 401 with WWW-Authenticate', async () => {
    const response = await b.tcp('/v1/placement', json('PUT', {}));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="rewire"');
    expect((await body(response)).error.code).toBe('EUNAUTHORIZED');
  });

  test('a mutating request with a wrong token is 401', async () => {
    const response = await b.tcp('/v1/restores/x', {
      method: 'DELETE',
      headers: { authorization: 'Bearer nope' },
    });
    expect(response.status).toBe(401);
  });

  test('a mutating request with the token goes through', async () => {
    const doc = { version: '4', nodes: [], processes: [], replacements: [] };
    const response = await b.tcp(
      '/v1/placement',
      json('PUT', doc, { authorization: `Bearer ${token}` }),
    );
    expect(response.status).toBe(200);
    expect((await body(response)).version).toBe('4');
  });

  test('the unix socket needs no token, and reads over TCP need none', async () => {
    expect((await b.unix('/v1/restores/x', { method: 'DELETE' })).status).toBe(404);
    expect((await b.tcp('/v1/node')).status).toBe(200);
  });
});

describe('hosts and addresses', () => {
  test('a TCP request naming a host other than loopback is refused with 421', async () => {
    const response = await a.tcp('/v1/node', { headers: { host: 'rebind.example:7781' } });
    expect(response.status).toBe(421);
    expect((await body(response)).error).toMatchObject({ code: 'EHOST' });
    expect((await a.tcp('/v1/node', { headers: { host: 'localhost:7781' } })).status).toBe(200);
  });

  test('an API served off loopback needs the token for reading too, but not for health', async () => {
    const token = 'off-loopback-token-1234';
    const app = createApi(a.agent, { token, tcpAddress: 'other' });
    expect((await app.request('/v1/node')).status).toBe(401);
    expect((await app.request('/livez')).status).toBe(200);
    const ok = await app.request('/v1/node', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
  });
});

describe('a stopped agent', () => {
  test('GET /readyz is 503 once the agent has stopped but the API still answers', async () => {
    const c = await startApiAgent();
    try {
      await c.agent.stop();
      const response = await c.tcp('/readyz');
      expect(response.status).toBe(503);
      expect((await body(response)).error.code).toBe('ENOT_READY');
    } finally {
      await c.api.stop();
    }
  });
});
