/**
 * Loads the agent's configuration. Sources, later overriding earlier: defaults < config file
 * (TOML, default /etc/rewire/rewire.toml) < environment (REWIRE_*) < flags. Every problem is
 * reported with the field and the source of its value, e.g.
 * `Invalid config: listen.port: must be 0..65535 (from env REWIRE_LISTEN)`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';

import { dmtcpHostId } from '../model/ids.ts';
import { ManifestError } from '../model/errors.ts';
import { parsePlacement } from '../model/schema.ts';
import { loadClusterKey } from './cluster-key.ts';
import { currentHost, defaultConfigPath, defaultValues, type Host } from './defaults.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { configOption } from './options.ts';
import { clientSchema, settingsSchema, type Settings } from './schema.ts';
import {
  envLayer,
  fileLayer,
  flagLayer,
  layerOf,
  merge,
  sourceOf,
  toObject,
  type Layer,
} from './sources.ts';
import type { AgentConfig, HostPort } from './types.ts';

export interface LoadOptions {
  /** Parsed flags by name without dashes: `{ 'http-port': '0', config: '/x.toml' }`. */
  flags?: Record<string, unknown>;
  /** The environment (default: `process.env`). */
  env?: Record<string, string | undefined>;
  /** Facts of the machine the defaults depend on (default: this process's). */
  host?: Partial<Host>;
  /** The file read when none is named (default /etc/rewire/rewire.toml); for tests. */
  defaultConfigPath?: string;
}

/** The API socket's name in the runtime directory. */
export const apiSocketName = 'api.sock';

/** Room kept in sun_path for the longest socket name the agent puts in the runtime directory. */
const socketNameRoom = 16;
const sunPathMax = 107;

/**
 * The agent's configuration. Creates the state and runtime directories (mode 0700) when they
 * are missing, and the cluster key file (mode 0600) on first start.
 * @throws {ConfigError} (code ECONFIG) naming the field and the source of its value
 */
export function loadConfig(options: LoadOptions = {}): AgentConfig {
  const host = hostOf(options);
  const layer = mergedLayer(options, host);
  const settings = validate(settingsSchema, layer);

  const config = resolve(settings, layer, host);
  makeDirectory(config.stateDir, 'stateDir', layer);
  makeDirectory(config.runtimeDir, 'runtimeDir', layer);
  const keyFile = settings.clusterKeyFile ?? join(config.stateDir, 'cluster.key');
  config.clusterKey = loadClusterKey(keyFile, sourceOf(layer, 'clusterKeyFile'));
  return config;
}

/** What a CLI client needs to reach the local agent: its API socket and TCP address. */
export interface ClientSettings {
  socketPath: string;
  http: { address: string; port: number; token: string | undefined };
  /** This node's id, as the agent resolves it (given, or DMTCP's hash of the host name). */
  nodeId: bigint;
}

/**
 * The API endpoints of the agent that the same sources describe, without touching the disk
 * beyond reading the config file. Only the fields a client needs are validated.
 * @throws {ConfigError} when those fields are invalid
 */
export function loadClientSettings(options: LoadOptions = {}): ClientSettings {
  const host = hostOf(options);
  const settings = validate(clientSchema, mergedLayer(options, host));
  return {
    socketPath: join(settings.runtimeDir, apiSocketName),
    http: { address: settings.http.address, port: settings.http.port, token: settings.http.token },
    nodeId: settings.nodeId ?? dmtcpHostId(host.hostname),
  };
}

function hostOf(options: LoadOptions): Host {
  const env = options.env ?? process.env;
  return { ...currentHost(env), ...options.host, env };
}

function mergedLayer(options: LoadOptions, host: Host): Layer {
  const flags = options.flags ?? {};
  const fromFlag =
    typeof flags[configOption.flag] === 'string' ? (flags[configOption.flag] as string) : undefined;
  const fromEnv = host.env[configOption.env] || undefined;
  const path = fromFlag ?? fromEnv ?? options.defaultConfigPath ?? defaultConfigPath;
  const explicit =
    fromFlag !== undefined
      ? `flag --${configOption.flag}`
      : fromEnv !== undefined
        ? `env ${configOption.env}`
        : undefined;

  return merge(
    layerOf(defaultValues(host), 'default'),
    fileLayer(path, explicit),
    envLayer(host.env),
    flagLayer(flags),
  );
}

function validate<S extends z.ZodType>(schema: S, layer: Layer): z.output<S> {
  const result = schema.safeParse(toObject(layer));
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.flatMap((issue) => toConfigIssues(issue, layer)));
}

function toConfigIssues(issue: z.core.$ZodIssue, layer: Layer): ConfigIssue[] {
  const where = (segments: PropertyKey[]) => ({
    path: formatPath(segments),
    source: sourceOf(layer, segments.filter((s) => typeof s === 'string').join('.')),
  });
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ ...where([...issue.path, key]), message: 'unknown key' }));
  }
  return [{ ...where(issue.path), message: issue.message }];
}

function formatPath(segments: PropertyKey[]): string {
  return segments
    .map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? String(s) : `.${String(s)}`))
    .join('');
}

function resolve(settings: Settings, layer: Layer, host: Host): AgentConfig {
  const listen = { address: settings.listen.address, port: settings.listen.port ?? 7780 };
  checkHttp(settings, layer);
  checkRuntimeDir(settings.runtimeDir, layer);

  return {
    nodeId: settings.nodeId ?? dmtcpHostId(host.hostname),
    nodeName: settings.nodeName,
    listen,
    advertise: resolveAdvertise(settings, listen, layer),
    clusterKey: new Uint8Array(0),
    http: { address: settings.http.address, port: settings.http.port, token: settings.http.token },
    stateDir: settings.stateDir,
    runtimeDir: settings.runtimeDir,
    localPolicy: settings.localPolicy,
    deadlines: settings.deadlines,
    dialConcurrency: settings.dialConcurrency,
    maxFrameBytes: settings.maxFrameBytes,
    parentDaemons: settings.parentDaemons,
    placement: resolvePlacement(settings.placement, layer),
    logLevel: settings.logLevel,
  };
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || /^[0:]+$/.test(address);
}

/** Whether `address` is a loopback address (127.0.0.0/8, ::1). */
export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address === '::ffff:127.0.0.1';
}

/** The advertised address: given, or the listen address when that is routable. */
function resolveAdvertise(settings: Settings, listen: HostPort, layer: Layer): HostPort {
  const given = settings.advertise;
  if (given === undefined) {
    if (!isWildcard(listen.address)) return { ...listen };
    const message =
      `must be set when listen is the wildcard '${listen.address}': give this node's routable ` +
      'address (--advertise, REWIRE_ADVERTISE or advertise in the config file)';
    throw ConfigError.single('advertise', message, sourceOf(layer, 'listen'));
  }
  if (isWildcard(given.address)) {
    const message = `must be a routable address that other agents can dial, not the wildcard '${given.address}'`;
    throw ConfigError.single('advertise.address', message, sourceOf(layer, 'advertise'));
  }
  return { address: given.address, port: given.port ?? listen.port };
}

/** The API answers on loopback; anywhere else it needs a token even for reading. */
function checkHttp(settings: Settings, layer: Layer): void {
  if (isLoopback(settings.http.address) || settings.http.token !== undefined) return;
  const message =
    `must be set when http.address '${settings.http.address}' is not a loopback address ` +
    '(set REWIRE_HTTP_TOKEN or http.token in the config file)';
  throw ConfigError.single('http.token', message, sourceOf(layer, 'http.address'));
}

function checkRuntimeDir(dir: string, layer: Layer): void {
  const bytes = Buffer.byteLength(dir) + 1 + socketNameRoom;
  if (bytes <= sunPathMax) return;
  const message = `'${dir}' is too long for unix socket paths in it (the most is ${sunPathMax - socketNameRoom - 1} bytes)`;
  throw ConfigError.single('runtimeDir', message, sourceOf(layer, 'runtimeDir'));
}

function resolvePlacement(value: unknown, layer: Layer): AgentConfig['placement'] {
  if (value === undefined) return undefined;
  const source = sourceOf(layer, 'placement');
  try {
    return parsePlacement(value);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    const issues = err.issues.map((i) => ({
      path: i.path === '' ? 'placement' : `placement.${i.path}`,
      message: i.message,
      source,
    }));
    throw new ConfigError(issues, { cause: err });
  }
}

function makeDirectory(dir: string, field: string, layer: Layer): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const flag = field === 'stateDir' ? '--state-dir' : '--runtime-dir';
    const message = `cannot create '${dir}': ${code}: run as root or give a directory you own with ${flag}`;
    throw ConfigError.single(field, message, sourceOf(layer, field), err);
  }
}
