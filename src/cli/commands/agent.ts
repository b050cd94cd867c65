/**
 * `rewire agent`: loads the config, starts the agent and its API, tells systemd it is ready
 * (sd_notify READY=1 when NOTIFY_SOCKET is set), and on SIGTERM or SIGINT stops cleanly:
 * API first, then the agent. A second signal exits at once.
 */
import { sdNotify } from '../../../ffi/notify.ts';
import { startAgent } from '../../agent/agent.ts';
import { applyRuntimeFlags } from '../../agent/runtime-flags.ts';
import { serveApi } from '../../api/serve.ts';
import { loadConfig } from '../../config/load.ts';
import { configOption, options as configOptions } from '../../config/options.ts';
import { createLogger, type Logger } from '../../log/logger.ts';
import { version } from '../../version.ts';
import type { Command, OptionDef } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';

const agentOptions: Record<string, OptionDef> = {
  [configOption.flag]: {
    type: 'string',
    value: configOption.value,
    description: configOption.description,
  },
};
for (const o of configOptions) {
  if (o.flag !== undefined)
    agentOptions[o.flag] = { type: 'string', value: o.value, description: o.description };
}

export const agent: Command = {
  name: 'agent',
  summary: 'Run the agent on this node (systemd: Type=notify)',
  usage: '[options]',
  details:
    'With no config file the agent runs as a single node on loopback, with a cluster key made in\n' +
    'its state directory. The API answers on http://127.0.0.1:7781 and RUNTIME_DIR/api.sock.',
  options: agentOptions,
  async run(ctx) {
    const config = loadConfig({ flags: ctx.values, env: ctx.env });
    applyRuntimeFlags();
    const log = createLogger({ level: config.logLevel }).child({ node: config.nodeId });
    log.info('agent.starting', {
      version,
      name: config.nodeName,
      listen: config.listen,
      advertise: config.advertise,
    });

    const running = await startAgent(config, log);
    const api = await serveApi(running, config, log).catch(async (err: unknown) => {
      await running.stop();
      throw err;
    });
    notify(log, `READY=1\nSTATUS=Serving the API on ${api.url}\nMAINPID=${process.pid}`);
    log.info('agent.ready', {
      api: api.url,
      socket: api.socketPath,
      control: running.controlSocketPath,
    });

    const signal = await stopSignal(log);
    notify(log, `STOPPING=1\nSTATUS=Stopping on ${signal}`);
    await api.stop();
    await running.stop();
    log.info('agent.exit', { signal, code: ExitCode.ok });
    return ExitCode.ok;
  },
};

/** sd_notify; a failure is logged, since the agent works without it. */
function notify(log: Logger, state: string): void {
  try {
    if (sdNotify(state)) log.debug('agent.notified', { state: state.split('\n')[0] });
  } catch (err) {
    log.warn('agent.notify_failed', { socket: process.env.NOTIFY_SOCKET, error: err });
  }
}

/** Resolves with the first SIGTERM or SIGINT; a second one exits at once. */
function stopSignal(log: Logger): Promise<string> {
  return new Promise((resolve) => {
    const first = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', first);
      process.off('SIGINT', first);
      const again = (next: NodeJS.Signals) => {
        log.warn('agent.exit_now', { signal: next });
        process.exit(ExitCode.failure);
      };
      process.once('SIGTERM', again);
      process.once('SIGINT', again);
      log.info('agent.stopping', { signal });
      resolve(signal);
    };
    process.on('SIGTERM', first);
    process.on('SIGINT', first);
  });
}
