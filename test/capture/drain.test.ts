/**
 * Drains of a frozen pair of Python processes: the bytes in flight between them end up in the
 * manifests exactly, none consumed, and a restore from those manifests delivers them first.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';

import {
  close,
  getSockOptRaw,
  pidfdGetfd,
  pidfdOpen,
  send,
  SO,
  SOL,
  TCP,
} from '../../ffi/index.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import { captureProcess, resumeProcess, type CaptureResult } from '../../src/capture/capture.ts';
import { CAP_NET_ADMIN, hasCapability } from '../../src/capture/proc.ts';
import type { Endpoint, Manifest } from '../../src/model/types.ts';
import { recvExactly } from '../ffi/helpers.ts';
import { place, startCluster, stopAll } from '../helpers/cluster.ts';
import {
  fdsLinkingTo,
  hex,
  pattern,
  runState,
  socketLinks,
  startOwner,
  stopOwners,
  type Owner,
} from './helpers.ts';

const NODE = 1n;
const bytes = (s: string) => new TextEncoder().encode(s);
const toServer = bytes('client bytes the server has not read\n');
const toClient = bytes('and server bytes the client has not read\n');

let agents: RunningAgent[] = [];
afterEach(async () => {
  await stopOwners();
  await stopAll(agents);
  agents = [];
});

async function connectedPair(): Promise<{ server: Owner; client: Owner }> {
  const server = await startOwner<{ port: number }>(['server']);
  const client = await startOwner(['client', String(server.info.port)]);
  return { server, client };
}

/** The endpoint of `r` connected to the other fixture (not a listener, not stdio). */
function conn(r: CaptureResult): Endpoint {
  return r.manifest.endpoints.find((e) => e.role !== 'listen' && e.family === 'inet')!;
}

function report(r: CaptureResult) {
  return r.sockets[r.manifest.endpoints.indexOf(conn(r))]!;
}

/** Freezes both: the client is captured and left frozen, then the server is captured. */
async function drainPair(server: Owner, client: Owner) {
  const c = await captureProcess(client.pid, { nodeId: NODE, drain: true, leaveFrozen: true });
  const stateAfterClient = runState(client.pid);
  const s = await captureProcess(server.pid, { nodeId: NODE, drain: true });
  resumeProcess(client.pid);
  return { c, s, stateAfterClient };
}

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('drain', () => {
  test('holds exactly the bytes in flight of a frozen pair, and consumes none of them', async () => {
    const { server, client } = await connectedPair();
    await client.command(`send ${hex(toServer)}`);
    await server.command(`send ${hex(toClient)}`);

    const { c, s, stateAfterClient } = await drainPair(server, client);

    expect(stateAfterClient).toBe('T');
    expect(runState(client.pid)).not.toBe('T');
    expect(runState(server.pid)).not.toBe('T');
    expect(conn(s).drained).toEqual(toServer);
    expect(conn(c).drained).toEqual(toClient);
    expect(s.drain).toMatchObject({ wasStopped: false, resumed: true, quiet: true });
    expect(c.drain).toMatchObject({ wasStopped: false, resumed: false });
    expect(s.drain!.queues).toEqual({ receive: true, send: true });
    expect(await server.command(`read ${toServer.length}`)).toMatchObject({ hex: hex(toServer) });
    expect(await client.command(`read ${toClient.length}`)).toMatchObject({ hex: hex(toClient) });
    const links = new Set([...socketLinks(server.pid), ...socketLinks(client.pid)]);
    expect(fdsLinkingTo(links)).toEqual([]);
  });

  test('leaves a process that was already stopped stopped', async () => {
    const { server } = await connectedPair();
    process.kill(server.pid, 'SIGSTOP');
    while (runState(server.pid) !== 'T') await Bun.sleep(1);

    const s = await captureProcess(server.pid, { nodeId: NODE, drain: true });

    expect(s.drain).toMatchObject({ wasStopped: true, resumed: false });
    expect(runState(server.pid)).toBe('T');
    resumeProcess(server.pid);
    expect(runState(server.pid)).not.toBe('T');
  });

  test.skipIf(!hasCapability(CAP_NET_ADMIN))(
    'copies a full send queue in TCP repair mode: receive queue and send queue hold the whole stream',
    async () => {
      const { server, client } = await connectedPair();
      const { sent } = (await server.command('fill')) as { sent: number };

      const { c, s } = await drainPair(server, client);

      const received = conn(c).drained;
      const unacked = report(s).drain!.send!;
      expect(received.length).toBeGreaterThan(0);
      expect(unacked.length).toBeGreaterThan(0);
      expect(received.length + unacked.length).toBe(sent);
      expect(sha(new Uint8Array([...received, ...unacked]))).toBe(sha(pattern(0, sent)));
      expect(s.drain!.queues).toEqual({ receive: true, send: true });
      expectRepairModeLeft(server.pid, s);
      expect(await client.command(`read ${sent}`)).toMatchObject({
        n: sent,
        sha256: sha(pattern(0, sent)),
      });
    },
  );
});

/** The sender's socket is out of repair mode and keeps the SO_REUSEADDR it inherited. */
function expectRepairModeLeft(pid: number, s: CaptureResult): void {
  const pidfd = pidfdOpen(pid);
  const fd = pidfdGetfd(pidfd, conn(s).fds[0]!);
  try {
    const int = (level: number, name: number) =>
      new DataView(getSockOptRaw(fd, level, name, 4).buffer).getInt32(0, true);
    expect(int(SOL.TCP, TCP.REPAIR)).toBe(0);
    expect(int(SOL.SOCKET, SO.REUSEADDR)).toBe(1);
  } finally {
    close(fd);
    close(pidfd);
  }
}

describe('restore from drained manifests', () => {
  test('delivers the drained bytes first, on both sides, across two agents', async () => {
    const { server, client } = await connectedPair();
    await client.command(`send ${hex(toServer)}`);
    await server.command(`send ${hex(toClient)}`);
    const { c, s } = await drainPair(server, client);
    await stopOwners();

    agents = await startCluster([1n, 2n]);
    const [a, b] = agents as [RunningAgent, RunningAgent];
    place(agents, 1n, [
      [s.manifest.process, 1n],
      [c.manifest.process, 2n],
    ]);
    const rs = a.engine.start(onlyTheConnection(s.manifest));
    const rc = b.engine.start(onlyTheConnection(c.manifest));
    await Promise.all([rs.whenDone(), rc.whenDone()]);
    expect(rs.tasks.map((t) => [t.state, t.how])).toEqual([['live', 'remote']]);
    expect(rc.tasks.map((t) => [t.state, t.how])).toEqual([['live', 'remote']]);

    const fs = rs.tasks[0]!.takeFd()!;
    const fc = rc.tasks[0]!.takeFd()!;
    try {
      const after = bytes('new bytes after the restore');
      send(fc, after);
      expect(recvExactly(fs, toServer.length + after.length)).toEqual(
        new Uint8Array([...toServer, ...after]),
      );
      expect(recvExactly(fc, toClient.length)).toEqual(toClient);
    } finally {
      close(fs);
      close(fc);
    }
  });
});

/** The manifest with only the endpoint connected to the other fixture. */
function onlyTheConnection(m: Manifest): Manifest {
  const e = m.endpoints.find((x) => x.role !== 'listen' && x.family === 'inet')!;
  expect(e.peer).toBeDefined();
  return { ...m, endpoints: [e] };
}
