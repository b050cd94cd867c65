import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { defaultRuntimeDir, defaultStateDir } from '../../src/config/defaults.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { loadClientSettings, loadConfig, type LoadOptions } from '../../src/config/load.ts';
import { dmtcpHostId } from '../../src/model/ids.ts';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewire-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Options with every default directory inside the test's temp dir and no real config file. */
function opts(extra: Partial<LoadOptions> & { env?: Record<string, string> } = {}): LoadOptions {
  return {
    defaultConfigPath: join(dir, 'absent.toml'),
    ...extra,
    env: { XDG_STATE_HOME: join(dir, 'state'), XDG_RUNTIME_DIR: join(dir, 'run'), ...extra.env },
    host: { uid: 1000, hostname: 'node-a', home: join(dir, 'home'), ...extra.host },
  };
}

function file(text: string, name = 'rewire.toml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError message that loading with `o` throws. */
function errorOf(o: LoadOptions): string {
  try {
    loadConfig(o);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ECONFIG');
    return (err as ConfigError).message;
  }
  throw new Error('loadConfig did not throw');
}

describe('defaults', () => {
  test('run a single node on loopback with no file', () => {
    const config = loadConfig(opts());

    expect(config.listen).toEqual({ address: '127.0.0.1', port: 7780 });
    expect(config.advertise).toEqual({ address: '127.0.0.1', port: 7780 });
    expect(config.http).toEqual({ address: '127.0.0.1', port: 7781, token: undefined });
    expect(config.nodeId).toBe(dmtcpHostId('node-a'));
    expect(config.nodeName).toBe('node-a');
    expect(config.localPolicy).toBe('keep-family');
    expect(config.logLevel).toBe('info');
    expect(config.deadlines).toEqual({ connectMs: 5000, handshakeMs: 10000, restoreMs: 60000 });
    expect(config.dialConcurrency).toBe(256);
    expect(config.maxFrameBytes).toBe(256 * 1024 * 1024);
    expect(config.parentDaemons).toContain('hydra_pmi_proxy');
    expect(config.parentDaemons).toHaveLength(9);
    expect(config.placement).toBeUndefined();
  });

  test('put state and sockets in the XDG directories for a user, created mode 0700', () => {
    const config = loadConfig(opts());

    expect(config.stateDir).toBe(join(dir, 'state', 'rewire'));
    expect(config.runtimeDir).toBe(join(dir, 'run', 'rewire'));
    expect(statSync(config.stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(config.runtimeDir).mode & 0o777).toBe(0o700);
  });

  test('fall back to ~/.local/state and /tmp/rewire-UID without XDG variables', () => {
    const host = { uid: 1234, hostname: 'h', home: '/home/u', env: {} };
    expect(defaultStateDir(host)).toBe('/home/u/.local/state/rewire');
    expect(defaultRuntimeDir(host)).toBe('/tmp/rewire-1234');
  });

  test('use /var/lib/rewire and /run/rewire as root', () => {
    const host = { uid: 0, hostname: 'h', home: '/root', env: { XDG_RUNTIME_DIR: '/run/user/0' } };
    expect(defaultStateDir(host)).toBe('/var/lib/rewire');
    expect(defaultRuntimeDir(host)).toBe('/run/rewire');
  });

  test('generate a 32-byte hex cluster key, mode 0600, once', () => {
    const first = loadConfig(opts());
    const keyFile = join(first.stateDir, 'cluster.key');

    expect(first.clusterKey).toHaveLength(32);
    expect(readFileSync(keyFile, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(loadConfig(opts()).clusterKey).toEqual(first.clusterKey);
  });

  test('treat a missing default config file as no file', () => {
    expect(() => loadConfig(opts({ defaultConfigPath: join(dir, 'nope.toml') }))).not.toThrow();
  });
});

describe('precedence', () => {
  test('flags override environment, which overrides the file, which overrides defaults', () => {
    const path = file(
      'listen = "127.0.0.2:1000"\nlogLevel = "warn"\ndialConcurrency = 8\n[http]\nport = 2000\n',
    );
    const base = { env: { REWIRE_CONFIG: path } };

    const fromFile = loadConfig(opts(base));
    expect(fromFile.listen).toEqual({ address: '127.0.0.2', port: 1000 });
    expect(fromFile.http.port).toBe(2000);
    expect(fromFile.logLevel).toBe('warn');

    const env = { ...base.env, REWIRE_LISTEN: '127.0.0.3:3000', REWIRE_HTTP_PORT: '3001' };
    const fromEnv = loadConfig(opts({ env }));
    expect(fromEnv.listen).toEqual({ address: '127.0.0.3', port: 3000 });
    expect(fromEnv.http.port).toBe(3001);
    expect(fromEnv.dialConcurrency).toBe(8);

    const flags = { listen: '127.0.0.4:4000', 'log-level': 'debug' };
    const fromFlags = loadConfig(opts({ env, flags }));
    expect(fromFlags.listen).toEqual({ address: '127.0.0.4', port: 4000 });
    expect(fromFlags.http.port).toBe(3001);
    expect(fromFlags.logLevel).toBe('debug');
  });

  test('take --config over REWIRE_CONFIG', () => {
    const envFile = file('logLevel = "warn"\n', 'env.toml');
    const flagFile = file('logLevel = "error"\n', 'flag.toml');
    const config = loadConfig(
      opts({ env: { REWIRE_CONFIG: envFile }, flags: { config: flagFile } }),
    );
    expect(config.logLevel).toBe('error');
  });

  test('treat an empty environment variable as unset', () => {
    const config = loadConfig(opts({ env: { REWIRE_LISTEN: '', REWIRE_HTTP_PORT: '' } }));
    expect(config.listen.port).toBe(7780);
    expect(config.http.port).toBe(7781);
  });

  test('read every setting from its environment variable and flag', () => {
    const env = {
      REWIRE_NODE_ID: '0xff',
      REWIRE_NODE_NAME: 'n1',
      REWIRE_LOCAL_POLICY: 'unix-when-local',
      REWIRE_CONNECT_DEADLINE_MS: '10',
      REWIRE_HANDSHAKE_DEADLINE_MS: '20',
      REWIRE_RESTORE_DEADLINE_MS: '30',
      REWIRE_MAX_FRAME_BYTES: '65536',
      REWIRE_PARENT_DAEMONS: 'orted, mpirun,,',
      REWIRE_HTTP_TOKEN: 'a-token-of-sixteen-chars',
      REWIRE_HTTP_ADDRESS: '::1',
    };
    const flags = {
      'state-dir': join(dir, 's'),
      'runtime-dir': join(dir, 'r'),
      'cluster-key-file': join(dir, 'k.key'),
      advertise: '127.0.0.9',
      'dial-concurrency': '3',
    };
    const config = loadConfig(opts({ env, flags }));

    expect(config.nodeId).toBe(255n);
    expect(config.nodeName).toBe('n1');
    expect(config.localPolicy).toBe('unix-when-local');
    expect(config.deadlines).toEqual({ connectMs: 10, handshakeMs: 20, restoreMs: 30 });
    expect(config.maxFrameBytes).toBe(65536);
    expect(config.parentDaemons).toEqual(['orted', 'mpirun']);
    expect(config.http).toEqual({ address: '::1', port: 7781, token: 'a-token-of-sixteen-chars' });
    expect(config.stateDir).toBe(join(dir, 's'));
    expect(config.runtimeDir).toBe(join(dir, 'r'));
    expect(readFileSync(join(dir, 'k.key'), 'utf8')).toHaveLength(65);
    expect(config.advertise).toEqual({ address: '127.0.0.9', port: 7780 });
    expect(config.dialConcurrency).toBe(3);
  });
});

describe('addresses', () => {
  test('take the listen port for an advertise address without one', () => {
    const config = loadConfig(opts({ flags: { listen: '0.0.0.0:9000', advertise: '10.1.2.3' } }));
    expect(config.advertise).toEqual({ address: '10.1.2.3', port: 9000 });
    expect(config.listen).toEqual({ address: '0.0.0.0', port: 9000 });
  });

  test('read bracketed IPv6 host:port', () => {
    const config = loadConfig(opts({ flags: { listen: '[::1]:9001' } }));
    expect(config.listen).toEqual({ address: '::1', port: 9001 });
    expect(config.advertise).toEqual({ address: '::1', port: 9001 });
  });

  test('refuse a wildcard listen address without advertise, naming the source of listen', () => {
    expect(errorOf(opts({ env: { REWIRE_LISTEN: '0.0.0.0:7780' } }))).toBe(
      "Invalid config: advertise: must be set when listen is the wildcard '0.0.0.0': give this node's " +
        'routable address (--advertise, REWIRE_ADVERTISE or advertise in the config file) (from env REWIRE_LISTEN)',
    );
    expect(errorOf(opts({ flags: { listen: '[::]:7780' } }))).toContain("wildcard '::'");
  });

  test('refuse a wildcard advertise address', () => {
    expect(errorOf(opts({ flags: { advertise: '0.0.0.0:7780' } }))).toBe(
      "Invalid config: advertise.address: must be a routable address that other agents can dial, not the wildcard '0.0.0.0' (from flag --advertise)",
    );
    expect(errorOf(opts({ env: { REWIRE_ADVERTISE: '[::]:1' } }))).toContain(
      '(from env REWIRE_ADVERTISE)',
    );
  });

  test('refuse a host name where an IP address is needed', () => {
    expect(errorOf(opts({ flags: { listen: 'localhost:7780' } }))).toBe(
      "Invalid config: listen.address: must be an IPv4 or IPv6 address, not 'localhost' (from flag --listen)",
    );
  });
});

describe('errors name the field and the source', () => {
  test('a port out of range in the environment', () => {
    expect(errorOf(opts({ env: { REWIRE_LISTEN: '127.0.0.1:70000' } }))).toBe(
      'Invalid config: listen.port: must be 0..65535 (from env REWIRE_LISTEN)',
    );
  });

  test('a port that is not a number on the command line', () => {
    expect(errorOf(opts({ flags: { 'http-port': 'abc' } }))).toBe(
      "Invalid config: http.port: must be a whole number, not 'abc' (from flag --http-port)",
    );
    expect(errorOf(opts({ flags: { listen: '127.0.0.1:x' } }))).toBe(
      "Invalid config: listen.port: must be a whole number, not 'x' (from flag --listen)",
    );
  });

  test('an unknown key in the file, top level and in a table', () => {
    const path = file('listne = "127.0.0.1:1"\n[http]\nprot = 1\n');
    expect(errorOf(opts({ flags: { config: path } }))).toBe(
      `Invalid config: 2 problems\n  http.prot: unknown key (from file ${path})\n  listne: unknown key (from file ${path})`,
    );
  });

  test('a value of the wrong type in the file', () => {
    const path = file('[http]\nport = "7781"\n[deadlines]\nconnectMs = 0\n');
    const message = errorOf(opts({ env: { REWIRE_CONFIG: path } }));
    expect(message).toContain(`http.port: must be a whole number, not '7781' (from file ${path})`);
    expect(message).toContain(`deadlines.connectMs: must be 1..86400000 (from file ${path})`);
  });

  test('an enum value', () => {
    expect(errorOf(opts({ env: { REWIRE_LOG_LEVEL: 'loud' } }))).toBe(
      "Invalid config: logLevel: must be one of debug, info, warn, error; not 'loud' (from env REWIRE_LOG_LEVEL)",
    );
    expect(errorOf(opts({ flags: { 'local-policy': 'unix' } }))).toContain(
      "localPolicy: must be one of keep-family, unix-when-local; not 'unix' (from flag --local-policy)",
    );
  });

  test('a node id out of range or malformed', () => {
    expect(errorOf(opts({ flags: { 'node-id': '18446744073709551616' } }))).toBe(
      "Invalid config: nodeId: must be 0..2^64-1, decimal or 0x hex, not '18446744073709551616' (from flag --node-id)",
    );
    expect(errorOf(opts({ env: { REWIRE_NODE_ID: 'node7' } }))).toContain(
      '(from env REWIRE_NODE_ID)',
    );
    expect(loadConfig(opts({ flags: { 'node-id': '18446744073709551615' } })).nodeId).toBe(
      (1n << 64n) - 1n,
    );
  });

  test('a relative directory', () => {
    expect(errorOf(opts({ env: { REWIRE_STATE_DIR: 'state' } }))).toBe(
      "Invalid config: stateDir: must be an absolute path, not 'state' (from env REWIRE_STATE_DIR)",
    );
  });

  test('a bad entry in a list, by index', () => {
    expect(errorOf(opts({ env: { REWIRE_PARENT_DAEMONS: 'orted,/usr/bin/mpirun' } }))).toBe(
      'Invalid config: parentDaemons[1]: must be an executable name without slashes or spaces (from env REWIRE_PARENT_DAEMONS)',
    );
  });

  test('a non-loopback API address without a token', () => {
    expect(errorOf(opts({ flags: { 'http-address': '0.0.0.0' } }))).toBe(
      "Invalid config: http.token: must be set when http.address '0.0.0.0' is not a loopback address (set REWIRE_HTTP_TOKEN or http.token in the config file) (from flag --http-address)",
    );
    const env = { REWIRE_HTTP_TOKEN: 'short' };
    expect(errorOf(opts({ env }))).toBe(
      'Invalid config: http.token: must be at least 16 characters (from env REWIRE_HTTP_TOKEN)',
    );
  });

  test('a runtime directory too long for unix socket paths', () => {
    const long = `/${'d'.repeat(100)}`;
    expect(errorOf(opts({ flags: { 'runtime-dir': long } }))).toContain('runtimeDir: ');
    expect(errorOf(opts({ flags: { 'runtime-dir': long } }))).toContain(
      '(from flag --runtime-dir)',
    );
  });

  test('a state directory that cannot be created', () => {
    const blocker = file('not a directory', 'blocker');
    expect(errorOf(opts({ env: { REWIRE_STATE_DIR: join(blocker, 'state') } }))).toBe(
      `Invalid config: stateDir: cannot create '${join(blocker, 'state')}': ENOTDIR: run as root or give a directory you own with --state-dir (from env REWIRE_STATE_DIR)`,
    );
  });

  test('an explicitly given config file that is missing', () => {
    const path = join(dir, 'missing.toml');
    expect(errorOf(opts({ flags: { config: path } }))).toBe(
      `Invalid config: (config): cannot read config file '${path}': ENOENT (from flag --config)`,
    );
    expect(errorOf(opts({ env: { REWIRE_CONFIG: path } }))).toContain('(from env REWIRE_CONFIG)');
  });

  test('a config file that is not TOML', () => {
    const path = file('listen = \n');
    expect(errorOf(opts({ flags: { config: path } }))).toStartWith(
      `Invalid config: (config): cannot parse '${path}' as TOML: `,
    );
  });
});

describe('cluster key', () => {
  function keyOptions(contents: string | Buffer, mode = 0o600): LoadOptions {
    const path = join(dir, 'cluster.key');
    writeFileSync(path, contents);
    chmodSync(path, mode);
    return opts({ env: { REWIRE_CLUSTER_KEY_FILE: path } });
  }

  test('read a hex key', () => {
    const hex = 'ab'.repeat(40);
    expect(Buffer.from(loadConfig(keyOptions(`${hex}\n`)).clusterKey).toString('hex')).toBe(hex);
  });

  test('read a raw key of 32 or more bytes', () => {
    const raw = Buffer.alloc(48, 0xfe);
    expect(Buffer.from(loadConfig(keyOptions(raw)).clusterKey)).toEqual(raw);
  });

  test('refuse a short key', () => {
    expect(errorOf(keyOptions('abcd'))).toContain(
      'holds 4 hex digits; a key needs an even number, at least 64 (from env REWIRE_CLUSTER_KEY_FILE)',
    );
    expect(errorOf(keyOptions(Buffer.alloc(20, 0xfe)))).toContain(
      'holds 20 bytes; a key needs at least 32',
    );
  });

  test('refuse a key readable by others, saying how to fix it', () => {
    const path = join(dir, 'cluster.key');
    expect(errorOf(keyOptions('ab'.repeat(32), 0o644))).toBe(
      `Invalid config: clusterKeyFile: '${path}' is readable by group or others (mode 0644): run chmod 600 '${path}' (from env REWIRE_CLUSTER_KEY_FILE)`,
    );
  });

  test('refuse a key file whose directory does not exist', () => {
    const path = join(dir, 'nope', 'cluster.key');
    expect(errorOf(opts({ flags: { 'cluster-key-file': path } }))).toBe(
      `Invalid config: clusterKeyFile: cannot create '${path}': ENOENT (from flag --cluster-key-file)`,
    );
  });
});

describe('placement in the file', () => {
  test('read the [placement] table as a placement', () => {
    const path = file(
      [
        '[placement]',
        'version = "3"',
        '[[placement.nodes]]',
        'nodeId = "42"',
        'address = "10.0.0.1"',
        'port = 7780',
      ].join('\n'),
    );
    const config = loadConfig(opts({ flags: { config: path } }));
    expect(config.placement?.version).toBe(3n);
    expect(config.placement?.nodes[0]).toMatchObject({
      nodeId: 42n,
      address: '10.0.0.1',
      port: 7780,
    });
  });

  test('report placement problems under placement, from the file', () => {
    const path = file('[placement]\nversion = "x"\n');
    const message = errorOf(opts({ flags: { config: path } }));
    expect(message).toContain('placement.version: ');
    expect(message).toContain(`(from file ${path})`);
  });
});

describe('client settings', () => {
  test('find the API socket in the runtime directory without creating anything', () => {
    const runtime = join(dir, 'not-made');
    const settings = loadClientSettings(
      opts({ flags: { 'runtime-dir': runtime }, env: { REWIRE_LOG_LEVEL: 'bad' } }),
    );
    expect(settings.socketPath).toBe(join(runtime, 'api.sock'));
    expect(settings.http).toEqual({ address: '127.0.0.1', port: 7781, token: undefined });
    expect(() => statSync(runtime)).toThrow();
  });
});
