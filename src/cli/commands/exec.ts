import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { loadClientSettings } from '../../config/load.ts';
import { restoreAndExec } from '../../control/exec.ts';
import { loadManifestFile } from '../../model/schema.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';

const systemControlSocket = '/run/rewire/control.sock';

export const exec: Command = {
  name: 'exec',
  summary: "Restore a process's sockets through the local agent, then exec a command with them",
  usage: '--manifest FILE [--control PATH] [--keep-fds N,...] [--keep-all] -- CMD [ARGS...]',
  details:
    'Each restored fd is put at the fd number(s) the manifest recorded, with close-on-exec\n' +
    'cleared, and F_SETOWN set to this process where the owner was the process itself; every\n' +
    'other fd above 2 is closed unless kept. CMD then replaces rewire and keeps its pid.\n' +
    'Nothing is started if any endpoint fails; dead endpoints (peer gone) are reported and\n' +
    'delivered as sockets that read their drained bytes, then end-of-file.',
  options: {
    manifest: { type: 'string', value: 'FILE', description: 'The manifest (JSON) of this process' },
    control: {
      type: 'string',
      value: 'PATH',
      description:
        'The agent control socket (env REWIRE_CONTROL; default RUNTIME_DIR/control.sock)',
    },
    'keep-fds': { type: 'string', value: 'N,...', description: 'More fds to leave open' },
    'keep-all': { type: 'boolean', description: 'Leave every fd open' },
    'session-fd': {
      type: 'string',
      value: 'N',
      description: 'Keep the control session open at fd N, for connections handed over later',
    },
    'deadline-ms': {
      type: 'string',
      value: 'MS',
      description: 'Deadline for the restore (default 60000)',
    },
    config: {
      type: 'string',
      value: 'FILE',
      description: 'Config file to find the runtime directory in',
    },
  },
  rest: true,
  async run(ctx) {
    const manifestPath = ctx.values.manifest;
    if (typeof manifestPath !== 'string')
      throw new UsageError('Cannot exec: --manifest FILE is required');
    if (ctx.rest.length === 0) throw new UsageError('Cannot exec: give the command after --');
    restoreAndExec({
      manifest: loadManifestFile(manifestPath),
      socketPath: controlSocket(ctx),
      command: ctx.rest,
      keepFds: parseFdList(ctx.values['keep-fds']),
      keepAll: ctx.values['keep-all'] === true,
      deadlineMs: parseDeadline(ctx.values['deadline-ms']),
      sessionFd: parseSessionFd(ctx.values['session-fd']),
      report: (line) => ctx.io.err(line),
    });
  },
};

function controlSocket(ctx: CommandContext): string {
  const given =
    typeof ctx.values.control === 'string' ? ctx.values.control : ctx.env.REWIRE_CONTROL;
  if (given) return given;
  const api = loadClientSettings({ flags: { config: ctx.values.config }, env: ctx.env }).socketPath;
  const configured = join(dirname(api), 'control.sock');
  return !existsSync(configured) && existsSync(systemControlSocket)
    ? systemControlSocket
    : configured;
}

function parseFdList(value: string | boolean | undefined): number[] {
  if (typeof value !== 'string' || value === '') return [];
  return value.split(',').map((part) => {
    const fd = Number(part);
    if (!Number.isInteger(fd) || fd < 0)
      throw new UsageError(`Cannot exec: --keep-fds has '${part}', not an fd number`);
    return fd;
  });
}

function parseSessionFd(value: string | boolean | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const fd = Number(value);
  if (!Number.isInteger(fd) || fd < 3) {
    throw new UsageError(`Cannot exec: --session-fd '${value}' is not an fd number above 2`);
  }
  return fd;
}

function parseDeadline(value: string | boolean | undefined): number {
  if (typeof value !== 'string') return 60_000;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0)
    throw new UsageError(`Cannot exec: --deadline-ms '${value}' is not a positive integer`);
  return ms;
}
