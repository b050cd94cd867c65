import { afterEach, beforeEach, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadConfig } from '../../src/config/load.ts';
import { options } from '../../src/config/options.ts';
import type { AgentConfig } from '../../src/config/types.ts';

const examplePath = join(import.meta.dir, '../../build/rewire.example.toml');
const example = readFileSync(examplePath, 'utf8');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewire-example-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The keys the example sets or shows commented out, dotted by their table. */
function documentedKeys(text: string): Set<string> {
  const keys = new Set<string>();
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^#/, '').trim();
    const header = /^\[([a-z.]+)\]$/i.exec(line);
    if (header) table = header[1]!;
    const key = /^([a-zA-Z]+)\s*=/.exec(line);
    if (key) keys.add(table === '' ? key[1]! : `${table}.${key[1]}`);
  }
  return keys;
}

test('the example config documents every setting, with its variable and flag', () => {
  const keys = documentedKeys(example);
  for (const option of options) {
    expect(keys).toContain(option.path);
    if (option.env) expect(example).toContain(option.env);
    if (option.flag) expect(example).toContain(`--${option.flag}`);
  }
  expect(keys).toContain('placement.version');
});

test('the example config, placement uncommented, loads to the defaults and its placement', () => {
  const at = example.indexOf('#[placement]');
  const uncommented = example.slice(0, at) + example.slice(at).replace(/^#/gm, '');
  const path = join(dir, 'rewire.toml');
  writeFileSync(path, uncommented);
  const env = { XDG_STATE_HOME: join(dir, 's'), XDG_RUNTIME_DIR: join(dir, 'r') };

  const config = loadConfig({ flags: { config: path }, env, host: { uid: 1000, hostname: 'h' } });
  const defaults = loadConfig({
    defaultConfigPath: join(dir, 'none.toml'),
    env,
    host: { uid: 1000, hostname: 'h' },
  });

  expect({ ...config, placement: undefined } as AgentConfig).toEqual(defaults);
  expect(config.placement?.nodes).toHaveLength(1);
  expect(config.placement?.processes).toHaveLength(1);
});
