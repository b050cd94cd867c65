/**
 * The sources of settings as layers of `dotted path → value and where it came from`, so that
 * a problem found later can name both the field and the source of its value.
 */
import { readFileSync } from 'node:fs';

import { ConfigError } from './errors.ts';
import { options, type OptionSpec } from './options.ts';

export interface Setting {
  value: unknown;
  /** `default`, `file PATH`, `env NAME` or `flag --name`. */
  source: string;
}

/** Settings by dotted path (`http.port`); tables are flattened, `placement` stays whole. */
export type Layer = Map<string, Setting>;

/** Tables of the config file whose keys are separate settings. */
const tables = new Set(['http', 'deadlines']);

/** A layer of fixed values, all from one source. */
export function layerOf(values: Record<string, unknown>, source: string): Layer {
  const layer: Layer = new Map();
  for (const [path, value] of Object.entries(values)) layer.set(path, { value, source });
  return layer;
}

/**
 * The settings of a TOML config file. A missing file gives an empty layer unless it was named
 * explicitly (`explicitSource`), when it is an error.
 * @throws {ConfigError} when the file cannot be read or is not valid TOML
 */
export function fileLayer(path: string, explicitSource: string | undefined): Layer {
  const text = readConfigText(path, explicitSource);
  if (text === undefined) return new Map();

  let doc: object;
  try {
    doc = Bun.TOML.parse(text);
  } catch (err) {
    const detail =
      err instanceof Error ? err.message.replace(/^TOML Parse error: /, '') : String(err);
    throw ConfigError.single('', `cannot parse '${path}' as TOML: ${detail}`, `file ${path}`, err);
  }

  const layer: Layer = new Map();
  flatten(doc as Record<string, unknown>, '', `file ${path}`, layer);
  return layer;
}

function readConfigText(path: string, explicitSource: string | undefined): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT' && explicitSource === undefined) return undefined;
    const source = explicitSource ?? 'default';
    throw ConfigError.single('', `cannot read config file '${path}': ${code}`, source, err);
  }
}

function flatten(doc: Record<string, unknown>, prefix: string, source: string, out: Layer): void {
  for (const [key, value] of Object.entries(doc)) {
    const path = prefix + key;
    if (prefix === '' && tables.has(key) && isPlainObject(value)) {
      flatten(value, `${key}.`, source, out);
    } else {
      out.set(path, { value, source });
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text given in the environment or on the command line, converted by the option's kind. */
function fromText(spec: OptionSpec, text: string): unknown {
  if (spec.kind === 'int') return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
  if (spec.kind === 'list') {
    return text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }
  return text;
}

/** The settings given as REWIRE_* environment variables; empty variables count as unset. */
export function envLayer(env: Record<string, string | undefined>): Layer {
  const layer: Layer = new Map();
  for (const spec of options) {
    const text = spec.env === undefined ? undefined : env[spec.env];
    if (text === undefined || text === '') continue;
    layer.set(spec.path, { value: fromText(spec, text), source: `env ${spec.env}` });
  }
  return layer;
}

/** The settings given as flags, keyed by flag name without dashes (`http-port`). */
export function flagLayer(flags: Record<string, unknown>): Layer {
  const layer: Layer = new Map();
  for (const spec of options) {
    const text = spec.flag === undefined ? undefined : flags[spec.flag];
    if (typeof text !== 'string') continue;
    layer.set(spec.path, { value: fromText(spec, text), source: `flag --${spec.flag}` });
  }
  return layer;
}

/** The layers merged, later ones overriding earlier ones path by path. */
export function merge(...layers: Layer[]): Layer {
  const merged: Layer = new Map();
  for (const layer of layers) for (const [path, setting] of layer) merged.set(path, setting);
  return merged;
}

/** The merged settings as the nested object the schema validates. */
export function toObject(layer: Layer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [path, { value }] of layer) {
    const dot = path.indexOf('.');
    if (dot < 0) {
      out[path] = value;
      continue;
    }
    const table = path.slice(0, dot);
    const inner = (out[table] ??= {}) as Record<string, unknown>;
    inner[path.slice(dot + 1)] = value;
  }
  return out;
}

/** Where the value at `path` (or the nearest enclosing setting) came from. */
export function sourceOf(layer: Layer, path: string): string {
  for (let p = path; p !== ''; p = p.slice(0, Math.max(0, p.lastIndexOf('.')))) {
    const setting = layer.get(p);
    if (setting !== undefined) return setting.source;
    if (!p.includes('.')) break;
  }
  const fromTable = [...layer].find(([p]) => p.startsWith(`${path}.`));
  return fromTable?.[1].source ?? 'default';
}
