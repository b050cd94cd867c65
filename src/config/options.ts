/**
 * Every setting an operator can give, with its config-file key, environment variable and
 * command-line flag: the single table that the loader, `rewire help agent` and the example
 * file follow. Later sources override earlier ones: defaults < file < environment < flags.
 */

/** How a value given as text (environment, flag) becomes a config value. */
export type OptionKind = 'string' | 'int' | 'list';

export interface OptionSpec {
  /** The key in the config file, dotted for tables: `http.port`. */
  path: string;
  env?: string;
  /** The flag without its dashes: `http-port` for `--http-port`. */
  flag?: string;
  kind: OptionKind;
  /** Placeholder for help, e.g. `HOST:PORT`. */
  value: string;
  description: string;
}

export const options: readonly OptionSpec[] = [
  {
    path: 'nodeId',
    env: 'REWIRE_NODE_ID',
    flag: 'node-id',
    kind: 'string',
    value: 'ID',
    description:
      "This node's 64-bit id, decimal or 0x hex (default: DMTCP's hash of the host name)",
  },
  {
    path: 'nodeName',
    env: 'REWIRE_NODE_NAME',
    flag: 'node-name',
    kind: 'string',
    value: 'NAME',
    description: "This node's name for people (default: the host name)",
  },
  {
    path: 'listen',
    env: 'REWIRE_LISTEN',
    flag: 'listen',
    kind: 'string',
    value: 'HOST:PORT',
    description: 'Where the peer listener binds (default: 127.0.0.1:7780)',
  },
  {
    path: 'advertise',
    env: 'REWIRE_ADVERTISE',
    flag: 'advertise',
    kind: 'string',
    value: 'HOST[:PORT]',
    description: 'The routable address other agents dial (default: the listen address)',
  },
  {
    path: 'http.address',
    env: 'REWIRE_HTTP_ADDRESS',
    flag: 'http-address',
    kind: 'string',
    value: 'HOST',
    description: 'Address of the HTTP control API (default: 127.0.0.1)',
  },
  {
    path: 'http.port',
    env: 'REWIRE_HTTP_PORT',
    flag: 'http-port',
    kind: 'int',
    value: 'PORT',
    description: 'Port of the HTTP control API (default: 7781; 0 picks a free port)',
  },
  {
    path: 'http.token',
    env: 'REWIRE_HTTP_TOKEN',
    kind: 'string',
    value: 'TOKEN',
    description: 'Bearer token that mutating API routes need over TCP (no flag: argv is public)',
  },
  {
    path: 'stateDir',
    env: 'REWIRE_STATE_DIR',
    flag: 'state-dir',
    kind: 'string',
    value: 'DIR',
    description: 'State directory (default: /var/lib/rewire as root, else ~/.local/state/rewire)',
  },
  {
    path: 'runtimeDir',
    env: 'REWIRE_RUNTIME_DIR',
    flag: 'runtime-dir',
    kind: 'string',
    value: 'DIR',
    description: 'Directory of the API and control sockets (default: /run/rewire as root)',
  },
  {
    path: 'clusterKeyFile',
    env: 'REWIRE_CLUSTER_KEY_FILE',
    flag: 'cluster-key-file',
    kind: 'string',
    value: 'FILE',
    description:
      'Cluster key, hex or 32+ raw bytes (default: STATE_DIR/cluster.key, made if missing)',
  },
  {
    path: 'localPolicy',
    env: 'REWIRE_LOCAL_POLICY',
    flag: 'local-policy',
    kind: 'string',
    value: 'POLICY',
    description: 'Same-node connections: keep-family (default) or unix-when-local',
  },
  {
    path: 'logLevel',
    env: 'REWIRE_LOG_LEVEL',
    flag: 'log-level',
    kind: 'string',
    value: 'LEVEL',
    description: 'debug, info (default), warn or error',
  },
  {
    path: 'deadlines.connectMs',
    env: 'REWIRE_CONNECT_DEADLINE_MS',
    flag: 'connect-deadline-ms',
    kind: 'int',
    value: 'MS',
    description: 'Deadline for a TCP connect to a peer agent (default: 5000)',
  },
  {
    path: 'deadlines.handshakeMs',
    env: 'REWIRE_HANDSHAKE_DEADLINE_MS',
    flag: 'handshake-deadline-ms',
    kind: 'int',
    value: 'MS',
    description: 'Deadline for the authenticated handshake (default: 10000)',
  },
  {
    path: 'deadlines.restoreMs',
    env: 'REWIRE_RESTORE_DEADLINE_MS',
    flag: 'restore-deadline-ms',
    kind: 'int',
    value: 'MS',
    description: 'Deadline for a whole restore (default: 60000)',
  },
  {
    path: 'dialConcurrency',
    env: 'REWIRE_DIAL_CONCURRENCY',
    flag: 'dial-concurrency',
    kind: 'int',
    value: 'N',
    description: 'Most peer connections dialled at once (default: 256)',
  },
  {
    path: 'maxFrameBytes',
    env: 'REWIRE_MAX_FRAME_BYTES',
    flag: 'max-frame-bytes',
    kind: 'int',
    value: 'BYTES',
    description: 'Largest frame or API body accepted (default: 268435456, 256 MiB)',
  },
  {
    path: 'parentDaemons',
    env: 'REWIRE_PARENT_DAEMONS',
    flag: 'parent-daemons',
    kind: 'list',
    value: 'A,B,...',
    description: 'Executable names of MPI parent daemons (default: orterun,mpirun,mpiexec,...)',
  },
];

/** The config file's path: `--config FILE`, or REWIRE_CONFIG. */
export const configOption = {
  env: 'REWIRE_CONFIG',
  flag: 'config',
  value: 'FILE',
  description: 'Config file (default: /etc/rewire/rewire.toml; a missing default file is fine)',
} as const;

/** Keys that only the config file sets (tables too structured for a flag). */
export const fileOnlyKeys = ['placement'] as const;
