/**
 * `rewire exec` refuses to start the command when anything before the exec fails: a manifest
 * that breaks a rule, or an endpoint that cannot be restored. The command would leave a
 * marker file; its absence shows it never ran.
 */
import { afterAll, beforeAll, expect, spyOn, test } from 'bun:test';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { bind, close, getSockName, socket } from '../../ffi/index.ts';
import type { RunningAgent } from '../../src/agent/agent.ts';
import { endpointKey } from '../../src/model/ids.ts';
import type { Manifest } from '../../src/model/types.ts';
import {
  endpoint,
  manifest,
  nodesOf,
  place,
  proc,
  startCluster,
  stopAll,
} from '../helpers/cluster.ts';
import { repo, writeManifest } from '../helpers/control.ts';

let agents: RunningAgent[];
let agent: RunningAgent;

beforeAll(async () => {
  agents = await startCluster([9n]);
  agent = agents[0]!;
});

afterAll(() => stopAll(agents));

/** Runs `rewire exec` for `m`; the command would create `marker`. */
async function execWithMarker(m: Manifest, marker: string, extra: string[] = []) {
  const proc = Bun.spawn(
    [
      process.execPath,
      join(repo, 'src/main.ts'),
      'exec',
      '--manifest',
      writeManifest(m),
      '--control',
      agent.controlSocketPath,
      ...extra,
      '--',
      'sh',
      '-c',
      'echo ran > "$0"',
      marker,
    ],
    { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

function markerPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'rewire-exec-')), 'ran');
}

/** A loopback port nothing listens on. */
function closedPort(): number {
  const fd = socket('inet', 'stream');
  try {
    bind(fd, { family: 'inet', address: '127.0.0.1', port: 0 });
    const bound = getSockName(fd);
    return bound.family === 'unix' ? 0 : bound.port;
  } finally {
    close(fd);
  }
}

test('a manifest naming an fd number twice is rejected with the field, before anything starts', async () => {
  const p = proc(9n, 9100);
  const m = manifest(p, [
    endpoint(p, 1, 'connect', [p, 2], { fds: [11] }),
    endpoint(p, 2, 'accept', [p, 1], { fds: [11] }),
  ]);
  const marker = markerPath();
  const start = spyOn(agent.engine, 'start');
  try {
    const r = await execWithMarker(m, marker);

    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('endpoints[1].fds[0]: fd 11 appears twice');
    expect(existsSync(marker)).toBe(false);
    expect(start).not.toHaveBeenCalled();
  } finally {
    start.mockRestore();
  }
});

test('an endpoint that cannot be restored is reported and the command is not started', async () => {
  const p = proc(9n, 9200);
  const q = proc(77n, 7700);
  place(agents, 1n, [[q, 77n]], {
    nodes: [...nodesOf(agents), { nodeId: 77n, address: '127.0.0.1', port: closedPort() }],
  });
  const m = manifest(p, [
    endpoint(p, 1, 'connect', [p, 2]),
    endpoint(p, 2, 'accept', [p, 1]),
    endpoint(p, 3, 'connect', [q, 1]),
  ]);
  const marker = markerPath();

  const r = await execWithMarker(m, marker, ['--deadline-ms', '1500']);

  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('Cannot restore: 1 endpoint(s) failed');
  expect(r.stderr).toContain(`${endpointKey({ process: p, conn: 3 })}: EPEER_UNREACHABLE`);
  expect(r.stderr).toContain("node '77' at 127.0.0.1");
  expect(r.stderr).not.toContain(`${endpointKey({ process: p, conn: 1 })}:`);
  expect(existsSync(marker)).toBe(false);
});
