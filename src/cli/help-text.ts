/** The text of `rewire help` and `rewire help COMMAND`. */
import { options as configOptions } from '../config/options.ts';
import type { Command, OptionDef } from './command.ts';
import { exitCodeHelp } from './exit-codes.ts';

const helpOption: [string, OptionDef] = [
  'help',
  { type: 'boolean', short: 'h', description: 'Show this help' },
];

function optionLines(options: Record<string, OptionDef>): string[] {
  const entries = [...Object.entries(options), helpOption].map(([name, def]) => {
    const flag = `${def.short ? `-${def.short}, ` : ''}--${name}${def.value ? ` ${def.value}` : ''}`;
    return [flag, def.description] as const;
  });
  const width = Math.max(...entries.map(([flag]) => flag.length));
  return entries.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
}

/** `rewire help`: commands, exit codes, environment. */
export function generalHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'rewire: restores the TCP connections of checkpointed processes after they restart on other nodes',
    '',
    'Usage: rewire COMMAND [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Client commands talk to the local agent over its API unix socket (RUNTIME_DIR/api.sock,',
    "as root /run/rewire/api.sock), or over TCP with --url. 'rewire help COMMAND' shows a",
    "command's options; 'rewire help agent' lists every configuration setting.",
    '',
    'Exit codes:',
    ...exitCodeHelp.map(([code, text]) => `  ${code}  ${text}`),
    '',
    'Environment:',
    '  REWIRE_URL         agent API over TCP, like --url',
    '  REWIRE_SOCKET      agent API unix socket, like --socket',
    '  REWIRE_HTTP_TOKEN  bearer token for mutating requests over TCP',
    '  REWIRE_CONFIG      config file, like --config',
    '  REWIRE_DEBUG=1     debug logs',
    '  REWIRE_LOG_FORMAT  json or text logs (default: json unless stderr is a terminal)',
    '',
  ].join('\n');
}

/** `rewire help NAME` or `rewire NAME --help`. */
export function commandHelp(command: Command): string {
  const lines = [
    `Usage: rewire ${command.name} ${command.usage}`.trimEnd(),
    '',
    `${command.summary}.`,
  ];
  if (command.details) lines.push('', command.details);
  lines.push('', 'Options:', ...optionLines(command.options ?? {}));
  if (command.name === 'agent') lines.push('', ...settingsHelp());
  return `${lines.join('\n')}\n`;
}

/** Every setting with its file key, variable and flag. */
function settingsHelp(): string[] {
  return [
    'Settings (later sources win: defaults < config file < environment < flags):',
    ...configOptions.map((o) => {
      const where = [
        `file: ${o.path}`,
        o.env ? `env: ${o.env}` : undefined,
        o.flag ? `flag: --${o.flag}` : undefined,
      ];
      return `  ${where.filter(Boolean).join(', ')}`;
    }),
    '  file: placement  (the [placement] table: the JSON placement document, as TOML)',
    '',
    'See build/rewire.example.toml for a commented config file.',
  ];
}
