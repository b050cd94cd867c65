/** Listen sockets re-created on the new node, and endpoints that can only come back dead. */
import { expect, test } from 'bun:test';

import {
  accept,
  bind,
  close,
  connect,
  getIntOption,
  getSockName,
  listen,
  recv,
  setNonBlocking,
  socket,
} from '../../ffi/index.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import {
  endpoint,
  intOption,
  manifest,
  nodesOf,
  place,
  proc,
  agentsPerTest,
} from '../helpers/cluster.ts';

const agents = agentsPerTest();

function freePort(): number {
  const fd = socket('inet', 'stream');
  bind(fd, { family: 'inet', address: '127.0.0.1', port: 0 });
  const addr = getSockName(fd);
  close(fd);
  return addr.family === 'inet' ? addr.port : 0;
}

test('a listen socket comes back on its port with its backlog and options, and accepts', async () => {
  await agents.start([1n]);
  const [a] = agents.current as [RunningAgent];
  const P = proc(9n, 10);
  const port = freePort();
  const listenEp = endpoint(P, 1, 'listen', undefined, {
    fds: [3],
    local: { family: 'inet', address: '127.0.0.1', port },
    backlog: 7,
    options: [intOption('SO_REUSEADDR', 1), intOption('SO_KEEPALIVE', 1)],
  });
  const r = a.engine.start(manifest(P, [listenEp]));
  await r.whenDone();
  const task = r.tasks[0]!;
  expect([task.state, task.how]).toEqual(['live', 'listen']);
  const fd = task.takeFd()!;
  try {
    expect(getSockName(fd)).toEqual({ family: 'inet', address: '127.0.0.1', port });
    expect(getIntOption(fd, 'SO_ACCEPTCONN')).toBe(1);
    expect(getIntOption(fd, 'SO_REUSEADDR')).toBe(1);
    const c = socket('inet', 'stream');
    connect(c, { family: 'inet', address: '127.0.0.1', port });
    const got = accept(fd);
    expect(got).not.toBeNull();
    close(got!.fd);
    close(c);
  } finally {
    close(fd);
  }
});

test('a listen socket whose port is taken is reported, not moved', async () => {
  await agents.start([1n]);
  const [a] = agents.current as [RunningAgent];
  const squatter = socket('inet', 'stream');
  bind(squatter, { family: 'inet', address: '127.0.0.1', port: 0 });
  listen(squatter, 1);
  const taken = getSockName(squatter);
  const port = taken.family === 'inet' ? taken.port : 0;
  try {
    const P = proc(9n, 11);
    const r = a.engine.start(
      manifest(P, [
        endpoint(P, 1, 'listen', undefined, {
          local: { family: 'inet', address: '127.0.0.1', port },
        }),
      ]),
    );
    await r.whenDone();
    expect(r.tasks[0]).toMatchObject({ state: 'failed', code: 'ELISTEN_PORT_IN_USE' });
    expect(r.tasks[0]!.message).toBe(`Cannot re-create listener: port '${port}' is in use`);
  } finally {
    close(squatter);
  }
});

test("an endpoint whose peer's node departed comes back dead: its drained bytes, then end-of-file", async () => {
  await agents.start([1n]);
  const [a] = agents.current as [RunningAgent];
  const P = proc(1n, 10);
  const Q = proc(5n, 20);
  const nodes = [
    ...nodesOf(agents.current),
    { nodeId: 5n, address: '127.0.0.1', port: 9, departed: true },
  ];
  place(agents.current, 3n, [[P, 1n]], { nodes });
  const drained = new TextEncoder().encode('last words from the departed peer');
  const r = a.engine.start(manifest(P, [endpoint(P, 1, 'accept', [Q, 1], { drained })]));
  await r.whenDone();
  const task = r.tasks[0]!;
  expect([task.state, task.how, task.code]).toEqual(['dead', 'dead', 'EPEER_GONE']);
  const fd = task.takeFd()!;
  try {
    setNonBlocking(fd, false);
    const buf = new Uint8Array(256);
    const n = recv(fd, buf);
    expect(new TextDecoder().decode(buf.subarray(0, n))).toBe('last words from the departed peer');
    expect(recv(fd, buf)).toBe(0);
  } finally {
    close(fd);
  }
  expect(a.connections()[0]).toMatchObject({ state: 'dead', how: 'dead', peerNode: '5' });
});
