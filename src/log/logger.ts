/**
 * Structured, leveled logs: one JSON object per line when stderr is not a terminal (systemd's
 * journal), readable text on a terminal. Every line has an event name saying what is about to
 * happen or what happened, and fields such as node and endpoint ids.
 */
import type { LogLevel } from '../config/types.ts';

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: Fields): void;
  info(event: string, fields?: Fields): void;
  warn(event: string, fields?: Fields): void;
  error(event: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Fields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** JSON lines (default: when stderr is not a terminal). */
  json?: boolean;
  /** Where lines go (default: stderr). */
  write?: (line: string) => void;
  base?: Fields;
}

function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? value.message : { code, message: value.message };
  }
  return value;
}

/** JSON that never throws: bigints (at any depth) as decimal strings, errors by code and message. */
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v) => plain(v));
  } catch (err) {
    return JSON.stringify(`[unserializable: ${(err as Error).message}]`);
  }
}

function textLine(level: LogLevel, event: string, fields: Fields): string {
  const parts = Object.entries(fields).map(([k, v]) => {
    const p = plain(v);
    return `${k}=${typeof p === 'string' ? p : safeJson(p)}`;
  });
  return `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${event} ${parts.join(' ')}`.trimEnd();
}

/**
 * Makes a logger. Debug lines are on when REWIRE_DEBUG=1 or the level is `debug`;
 * REWIRE_LOG_FORMAT=json or text overrides the choice made from the terminal.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const envDebug = process.env.REWIRE_DEBUG === '1';
  const min = order[envDebug ? 'debug' : (options.level ?? 'info')];
  const envFormat = process.env.REWIRE_LOG_FORMAT;
  const fromEnv = envFormat === 'json' ? true : envFormat === 'text' ? false : undefined;
  const json = options.json ?? fromEnv ?? !process.stderr.isTTY;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const base = options.base ?? {};

  const emit = (level: LogLevel, event: string, fields: Fields = {}): void => {
    if (order[level] < min) return;
    const all = { ...base, ...fields };
    if (!json) return write(textLine(level, event, all));
    const record: Fields = { time: new Date().toISOString(), level, event };
    for (const [k, v] of Object.entries(all)) record[k] = plain(v);
    write(safeJson(record));
  };

  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    child: (fields) =>
      createLogger({ ...options, level: options.level, json, write, base: { ...base, ...fields } }),
  };
}

/** A logger that drops everything, for library use and tests that do not read logs. */
export const silentLogger: Logger = createLogger({ write: () => {}, level: 'error', json: true });
