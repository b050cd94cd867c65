/**
 * The values used when no file, variable or flag gives one: a single node on loopback, with
 * state and sockets in the usual places for root (systemd) or for a user.
 */
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

/** The facts of the machine and user that the defaults depend on; tests pass their own. */
export interface Host {
  uid: number;
  hostname: string;
  home: string;
  env: Record<string, string | undefined>;
}

export function currentHost(env: Record<string, string | undefined>): Host {
  return { uid: process.getuid?.() ?? 0, hostname: hostname(), home: homedir(), env };
}

export const defaultConfigPath = '/etc/rewire/rewire.toml';

export const defaultParentDaemons = [
  'orterun',
  'mpirun',
  'mpiexec',
  'orted',
  'prterun',
  'prte',
  'prted',
  'mpiexec.hydra',
  'hydra_pmi_proxy',
];

/** /var/lib/rewire as root, else $XDG_STATE_HOME/rewire or ~/.local/state/rewire. */
export function defaultStateDir(host: Host): string {
  if (host.uid === 0) return '/var/lib/rewire';
  const xdg = host.env.XDG_STATE_HOME;
  return xdg ? join(xdg, 'rewire') : join(host.home, '.local', 'state', 'rewire');
}

/** /run/rewire as root, else $XDG_RUNTIME_DIR/rewire or /tmp/rewire-UID. */
export function defaultRuntimeDir(host: Host): string {
  if (host.uid === 0) return '/run/rewire';
  const xdg = host.env.XDG_RUNTIME_DIR;
  return xdg ? join(xdg, 'rewire') : `/tmp/rewire-${host.uid}`;
}

/** The raw (file-shaped) defaults; `advertise` and `clusterKeyFile` are derived later. */
export function defaultValues(host: Host): Record<string, unknown> {
  return {
    nodeName: host.hostname,
    listen: '127.0.0.1:7780',
    'http.address': '127.0.0.1',
    'http.port': 7781,
    stateDir: defaultStateDir(host),
    runtimeDir: defaultRuntimeDir(host),
    localPolicy: 'keep-family',
    logLevel: 'info',
    'deadlines.connectMs': 5000,
    'deadlines.handshakeMs': 10000,
    'deadlines.restoreMs': 60000,
    dialConcurrency: 256,
    maxFrameBytes: 256 * 1024 * 1024,
    parentDaemons: defaultParentDaemons,
  };
}
