/**
 * Test helpers for the control socket: manifests written as JSON files, the Python client
 * (`test/fixtures/rewire_client.py`) run as a subprocess, and waiting on a condition with a
 * deadline. Clients always run in another process: the agents live in the test process, so a
 * blocking call to them from here would never be answered.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { RunningAgent } from '../../src/agent/agent.ts';
import type { OpenSession } from '../../src/control/server.ts';
import { manifestToJson } from '../../src/model/schema.ts';
import type { Manifest } from '../../src/model/types.ts';

export const repo = join(import.meta.dir, '..', '..');
export const pythonClient = join(repo, 'test/fixtures/rewire_client.py');

/** Writes `m` in its JSON form to a new temporary file; returns the path. */
export function writeManifest(m: Manifest): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewire-control-'));
  const file = join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify(manifestToJson(m)));
  return file;
}

export interface ClientEndpoint {
  id: string;
  conn: number;
  status: 'live' | 'dead' | 'failed';
  how: string;
  code: string;
  message: string;
  fds: number[];
  attached: number;
  fd: number | null;
  fd_arrived: boolean;
  peer: string | null;
  socket?: { family: string; type: string; owner: number; sockname: unknown; peername: unknown };
  dead_bytes?: string;
}

export interface ClientReport {
  pid: number;
  uid: number;
  done: {
    restoreId: string;
    live: number;
    dead: number;
    failed: number;
    code: string;
    message: string;
  };
  endpoints: ClientEndpoint[];
  exchange: { pairs: number; ok: boolean; errors: string[] } | null;
  fd_count: number;
  unclaimed_fds: number;
}

export interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the Python client against `agent` to completion (killed after `timeoutMs`). */
export async function runPythonClient(
  agent: RunningAgent,
  manifestFile: string,
  args: string[] = [],
  timeoutMs = 30_000,
): Promise<ClientRun> {
  const proc = spawnPythonClient(agent, manifestFile, args);
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts the Python client against `agent`; stdout is piped, stderr inherited. */
export function spawnPythonClient(agent: RunningAgent, manifestFile: string, args: string[]) {
  return Bun.spawn(
    [
      'python3',
      pythonClient,
      '--control',
      agent.controlSocketPath,
      '--manifest',
      manifestFile,
      ...args,
    ],
    { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' },
  );
}

/** The client's JSON report, failing with its output when it printed none. */
export function clientReport(run: ClientRun): ClientReport {
  const line = run.stdout.trim().split('\n')[0] ?? '';
  if (!line.startsWith('{'))
    throw new Error(`client exited ${run.code} without a report: ${run.stderr}`);
  const report = JSON.parse(line) as ClientReport & { error?: string };
  if (report.error) throw new Error(`client failed: ${report.error}`);
  return report;
}

/** Reads lines from a piped stdout, one at a time. */
export function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string | null> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return async () => {
    for (;;) {
      const nl = buffered.indexOf('\n');
      if (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) return null;
      buffered += decoder.decode(value, { stream: true });
    }
  };
}

/** Waits until `check()` is true, polling; throws naming `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** The control server's long-lived sessions, by process key. */
export function openSessions(agent: RunningAgent): ReadonlyMap<string, OpenSession> {
  return (agent as unknown as { control: { sessions: Map<string, OpenSession> } }).control.sessions;
}
