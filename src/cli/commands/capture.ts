import { writeFileSync } from 'node:fs';

import { captureProcess, resumeProcess } from '../../capture/capture.ts';
import { captureToJson, type CaptureJson } from '../../capture/view.ts';
import { loadClientSettings } from '../../config/load.ts';
import { RewireError } from '../../errors.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson } from '../io.ts';

export const capture: Command = {
  name: 'capture',
  summary: "Read a running process's sockets into a manifest (JSON), here, without the agent",
  usage: '--pid PID [--drain [--leave-frozen]] [--node-id ID] [--out FILE] [--manifest FILE]',
  details:
    'Copies each socket fd of PID (pidfd_getfd: root, or the same user with ptrace allowed)\n' +
    'and prints the manifest with, beside it, the TCP states, queue lengths, the reason for\n' +
    'each role, the sockets left out and every other fd. --drain stops PID (SIGSTOP), waits\n' +
    'for its connections to go quiet, copies the receive queues (and with CAP_NET_ADMIN the\n' +
    "unacknowledged send queues) without consuming them, then continues PID; 'queues' says\n" +
    'what was copied. Peers on this node are named; peers on other nodes are filled in by the\n' +
    "agents' cluster map (GET /v1/cluster/connections). 'rewire capture --pid PID --resume'\n" +
    'continues a process left frozen.',
  options: {
    pid: { type: 'string', value: 'PID', description: 'The process to capture' },
    drain: { type: 'boolean', description: 'Freeze the process and copy its socket queues' },
    'leave-frozen': {
      type: 'boolean',
      description: 'With --drain: leave the process stopped afterwards',
    },
    resume: { type: 'boolean', description: 'Only continue a process left frozen, and exit' },
    'node-id': {
      type: 'string',
      value: 'ID',
      description: "This node's id (default: as the agent's config resolves it)",
    },
    out: { type: 'string', value: 'FILE', description: 'Write the JSON to FILE, not stdout' },
    manifest: {
      type: 'string',
      value: 'FILE',
      description: "Also write the manifest alone to FILE (for 'rewire restore' and 'exec')",
    },
    config: { type: 'string', value: 'FILE', description: 'Config file to find the node id in' },
  },
  async run(ctx) {
    const pid = parsePid(ctx.values.pid);
    if (ctx.values.resume) return resumeOnly(ctx, pid);
    if (ctx.values['leave-frozen'] && !ctx.values.drain) {
      throw new UsageError('Cannot capture: --leave-frozen needs --drain');
    }

    const result = await captureProcess(pid, {
      nodeId: nodeIdOf(ctx),
      drain: ctx.values.drain === true,
      leaveFrozen: ctx.values['leave-frozen'] === true,
    });
    const json = captureToJson(result);
    write(ctx, json);
    warnUnjoined(ctx, json);
    return ExitCode.ok;
  },
};

function resumeOnly(ctx: CommandContext, pid: number): number {
  if (ctx.values.drain || ctx.values['leave-frozen']) {
    throw new UsageError('Cannot resume: --resume takes no --drain or --leave-frozen');
  }
  resumeProcess(pid);
  ctx.io.out(toJson({ pid, resumed: true }));
  return ExitCode.ok;
}

function parsePid(value: string | boolean | undefined): number {
  if (typeof value !== 'string') throw new UsageError('Cannot capture: --pid PID is required');
  const pid = /^\d{1,10}$/.test(value) ? Number(value) : 0;
  if (pid <= 0 || pid > 0x3fff_ffff) {
    throw new UsageError(`Cannot capture: --pid '${value}' is not a process id`);
  }
  return pid;
}

function nodeIdOf(ctx: CommandContext): bigint {
  const flags = { config: ctx.values.config, 'node-id': ctx.values['node-id'] };
  return loadClientSettings({ flags, env: ctx.env }).nodeId;
}

function write(ctx: CommandContext, json: CaptureJson): void {
  const out = ctx.values.out;
  const manifest = ctx.values.manifest;
  if (typeof manifest === 'string') writeFile(manifest, toJson(json.manifest));
  if (typeof out !== 'string') return ctx.io.out(toJson(json));

  writeFile(out, toJson(json));
  const n = json.manifest.endpoints.length;
  ctx.io.err(`Captured ${n} endpoint(s) of pid ${json.pid} into '${out}'`);
}

function writeFile(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new RewireError('EOUTPUT', `Cannot write '${path}': ${code}`);
  }
}

function warnUnjoined(ctx: CommandContext, json: CaptureJson): void {
  const open = json.manifest.endpoints.filter((e) => e.role !== 'listen' && !e.peer).length;
  if (open === 0) return;
  ctx.io.err(
    `${open} endpoint(s) have no peer yet (not found on this node): the agents' cluster map ` +
      '(GET /v1/cluster/connections) fills in peers on other nodes',
  );
}
