/** Capture of a Python program whose sockets, options and fcntl state are known. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';

import { O, optionSpec } from '../../ffi/index.ts';
import { captureProcess, type CaptureResult } from '../../src/capture/capture.ts';
import { captureToJson } from '../../src/capture/view.ts';
import { endpointKey } from '../../src/model/ids.ts';
import { manifestToJson, parseManifest } from '../../src/model/schema.ts';
import type { Endpoint } from '../../src/model/types.ts';
import { fdsLinkingTo, pidfdCount, socketLinks, startOwner, type Owner } from './helpers.ts';

interface Zoo {
  pid: number;
  listener: { fd: number; port: number };
  client: { fd: number; dup: number; port: number; sndbuf: number; signal: number };
  server: { fd: number };
  unix: { a: number; b: number };
  udp: { fd: number };
  pipe: { r: number; w: number };
}

const NODE = 4242n;
let zoo: Owner<Zoo>;
let result: CaptureResult;

beforeAll(async () => {
  zoo = await startOwner<Zoo>(['zoo']);
  result = await captureProcess(zoo.pid, { nodeId: NODE });
});

afterAll(async () => {
  await zoo.stop();
});

function endpointAt(fd: number): Endpoint {
  const e = result.manifest.endpoints.find((x) => x.fds.includes(fd));
  if (!e) throw new Error(`no endpoint holds fd ${fd}`);
  return e;
}

function intOption(e: Endpoint, label: string): number | undefined {
  const spec = optionSpec(label);
  const o = e.options.find((x) => x.level === spec.level && x.name === spec.optname);
  return o && new DataView(o.value.buffer, o.value.byteOffset, 4).getInt32(0, true);
}

describe('a process with a known set of sockets', () => {
  test('names the process by node id, pid and start time, generation 1, for a restore', () => {
    const m = result.manifest;
    expect(m.process).toMatchObject({ hostId: NODE, pid: zoo.pid, generation: 1 });
    expect(m.process.birthTime).toBeGreaterThan(0n);
    expect(m).toMatchObject({
      executable: 'python3',
      pid: 0,
      checkpointPid: zoo.pid,
      nodeId: NODE,
    });
  });

  test('finds the listener, the connected pair and the unix pair, and leaves out the UDP socket', () => {
    const { listener, client, server, unix, udp } = zoo.info;
    const fds = result.manifest.endpoints.map((e) => e.fds);
    const zooFds = [[listener.fd], [client.fd, client.dup], [server.fd], [unix.a], [unix.b]];
    // Bun gives the child socketpairs for its piped stdin and stdout.
    expect(fds).toEqual([[0], [1], ...zooFds]);
    expect(result.skipped).toEqual([
      expect.objectContaining({ fds: [udp.fd], family: 'inet', type: 'dgram' }),
    ]);
    expect(result.skipped[0]!.reason).toBe('only stream and seqpacket sockets are captured');
  });

  test('lists every other fd as a file, with what it refers to', () => {
    const { pipe } = zoo.info;
    const files = new Map(result.files.map((f) => [f.fd, f.target]));
    expect(files.get(pipe.r)).toMatch(/^pipe:\[\d+\]$/);
    expect(files.get(pipe.w)).toBe(files.get(pipe.r));
    expect(files.has(2)).toBe(true);
  });

  test('names a peer in another process on this node: the test process at the stdio sockets', () => {
    for (const fd of [0, 1]) {
      const e = endpointAt(fd);
      expect(e.peer?.process).toMatchObject({ hostId: NODE, pid: process.pid, generation: 1 });
      expect(e.peerNode).toBe(NODE);
    }
  });

  test('reads the listener: role, address, backlog and SO_REUSEADDR', () => {
    const e = endpointAt(zoo.info.listener.fd);
    expect(e).toMatchObject({ role: 'listen', family: 'inet', type: 'stream', protocol: 6 });
    expect(e.local).toEqual({ family: 'inet', address: '127.0.0.1', port: zoo.info.listener.port });
    expect(e.remote).toBeUndefined();
    expect(e.peer).toBeUndefined();
    expect(e.backlog).toBe(7);
    expect(intOption(e, 'SO_REUSEADDR')).toBe(1);
  });

  test('reads every option the client set, as getsockopt reports it', () => {
    const e = endpointAt(zoo.info.client.fd);
    expect(intOption(e, 'TCP_NODELAY')).toBe(1);
    expect(intOption(e, 'SO_KEEPALIVE')).toBe(1);
    expect(intOption(e, 'TCP_KEEPIDLE')).toBe(33);
    expect(intOption(e, 'TCP_KEEPINTVL')).toBe(7);
    expect(intOption(e, 'TCP_KEEPCNT')).toBe(4);
    expect(intOption(e, 'TCP_USER_TIMEOUT')).toBe(12345);
    expect(intOption(e, 'SO_SNDBUF')).toBe(zoo.info.client.sndbuf);
    const linger = e.options.find((o) => o.label === 'SO_LINGER')!.value;
    expect([...linger]).toEqual([1, 0, 0, 0, 5, 0, 0, 0]);
  });

  test('reads the fcntl state: O_NONBLOCK, the owner, the signal, and close-on-exec per fd', () => {
    const { client } = zoo.info;
    const e = endpointAt(client.fd);
    expect(e.fcntl).toEqual({
      statusFlags: O.NONBLOCK,
      owner: zoo.pid,
      signal: client.signal,
      cloexec: true,
    });
    const report = result.sockets[result.manifest.endpoints.indexOf(e)]!;
    expect(report.cloexec).toEqual({ [client.fd]: true, [client.dup]: false });
    expect(endpointAt(zoo.info.server.fd).fcntl).toMatchObject({ statusFlags: 0, owner: 0 });
  });

  test('tells the connect side from the accept side, and pairs them as each other peers', () => {
    const c = endpointAt(zoo.info.client.fd);
    const s = endpointAt(zoo.info.server.fd);
    expect([c.role, s.role]).toEqual(['connect', 'accept']);
    expect(c.peer).toEqual(s.id);
    expect(s.peer).toEqual(c.id);
    expect([c.peerNode, s.peerNode, c.peerExecutable]).toEqual([NODE, NODE, 'python3']);
    expect(c.local).toEqual(s.remote);
    expect(c.remote).toEqual(s.local);
    const reasons = result.sockets.map((r) => r.roleReason);
    expect(reasons.slice(2)).toEqual([
      'listening',
      'default-connect',
      'listener-port',
      'unix-inode-order',
      'unix-inode-order',
    ]);
  });

  test('pairs the unix socketpair by inode, the lower inode connecting', () => {
    const a = endpointAt(zoo.info.unix.a);
    const b = endpointAt(zoo.info.unix.b);
    expect(a.peer).toEqual(b.id);
    expect(b.peer).toEqual(a.id);
    const [lower, higher] = a.id.conn < b.id.conn ? [a, b] : [b, a];
    expect([lower.role, higher.role]).toEqual(['connect', 'accept']);
    expect(a.local).toEqual({ family: 'unix' });
  });

  test('numbers each endpoint by its socket inode', () => {
    for (const [i, e] of result.manifest.endpoints.entries()) {
      expect(result.sockets[i]!.inode).toBe(e.id.conn);
      expect(socketLinks(zoo.pid).has(`socket:[${e.id.conn}]`)).toBe(true);
    }
  });

  test('reports TCP states and queue lengths beside the manifest, without draining', () => {
    const json = captureToJson(result);
    const byFd = (fd: number) => json.sockets.find((s) => s.fds.includes(fd))!;
    expect(byFd(zoo.info.listener.fd).tcpState).toBe('LISTEN');
    expect(byFd(zoo.info.client.fd)).toMatchObject({
      tcpState: 'ESTABLISHED',
      queues: { receive: 13, send: 0 },
      role: 'connect',
    });
    expect(byFd(zoo.info.unix.b).queues).toEqual({ receive: 10, send: 0 });
    expect(json.queues).toEqual({
      receive: false,
      send: false,
      reason: 'not drained: capture with --drain to copy the queues',
    });
    expect(json.manifest.endpoints.every((e) => e.drained === '')).toBe(true);
  });

  test('writes a manifest that reads back equal and passes validation', () => {
    const json = JSON.parse(JSON.stringify(manifestToJson(result.manifest)));
    expect(parseManifest(json)).toEqual(result.manifest);
  });

  test('gives the same ids when captured again', async () => {
    const again = await captureProcess(zoo.pid, { nodeId: NODE });
    const keys = (r: CaptureResult) => r.manifest.endpoints.map((e) => endpointKey(e.id));
    expect(keys(again)).toEqual(keys(result));
  });

  test('leaves no copy of any socket and no pidfd open in the capturing process', async () => {
    const links = socketLinks(zoo.pid);
    const pidfds = pidfdCount();
    for (let i = 0; i < 20; i++) await captureProcess(zoo.pid, { nodeId: NODE });
    expect(fdsLinkingTo(links)).toEqual([]);
    expect(pidfdCount()).toBe(pidfds);
  });

  test('does not consume the bytes waiting in the queues', async () => {
    expect(await zoo.command('read 0')).toMatchObject({ n: 0 });
    const json = captureToJson(await captureProcess(zoo.pid, { nodeId: NODE }));
    expect(json.sockets.find((s) => s.fds.includes(zoo.info.client.fd))!.queues!.receive).toBe(13);
  });
});
