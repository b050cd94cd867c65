/**
 * The zod schema of the merged settings, with messages that say what a value must be. Values
 * given as text (environment, flags) have already been converted by their option's kind.
 */
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { z } from 'zod';

const U64_MAX = (1n << 64n) - 1n;

function shown(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === undefined) return 'nothing';
  return typeof value === 'object' ? (Array.isArray(value) ? 'a list' : 'a table') : String(value);
}

function wholeNumber(min: number, max: number): z.ZodNumber {
  const range = `must be ${min}..${max}`;
  return z
    .number({ error: (iss) => `must be a whole number, not ${shown(iss.input)}` })
    .int(`must be a whole number`)
    .min(min, range)
    .max(max, range);
}

const text = z.string({ error: (iss) => `must be a string, not ${shown(iss.input)}` });

const ipAddress = text.refine((s) => isIP(s) !== 0, {
  error: (iss) => `must be an IPv4 or IPv6 address, not ${shown(iss.input)}`,
});

const port = wholeNumber(0, 65535);

/** `host:port`, `[v6]:port`, or a bare host (the port then comes from elsewhere). */
function splitHostPort(value: string): { address: string; port?: unknown } {
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(value);
  if (bracketed) return withPort(bracketed[1]!, bracketed[2]);
  const colons = value.split(':').length - 1;
  if (colons !== 1) return { address: value };
  const at = value.lastIndexOf(':');
  return withPort(value.slice(0, at), value.slice(at + 1));
}

function withPort(
  address: string,
  portText: string | undefined,
): { address: string; port?: unknown } {
  if (portText === undefined) return { address };
  return { address, port: /^\d+$/.test(portText) ? Number(portText) : portText };
}

const hostPort = text
  .transform(splitHostPort)
  .pipe(z.object({ address: ipAddress, port: port.optional() }));

const absolutePath = text.refine(isAbsolute, {
  error: (iss) => `must be an absolute path, not ${shown(iss.input)}`,
});

const nodeId = z
  .union([text, z.number()], { error: 'must be a decimal or 0x hex string' })
  .transform((value, ctx) => {
    const s = String(value).trim();
    const ok = /^(0x[0-9a-fA-F]{1,16}|\d{1,20})$/.test(s) && BigInt(s) <= U64_MAX;
    if (ok) return BigInt(s);
    ctx.addIssue({
      code: 'custom',
      message: `must be 0..2^64-1, decimal or 0x hex, not ${shown(value)}`,
    });
    return z.NEVER;
  });

const oneOf = <T extends string>(values: readonly [T, ...T[]]) =>
  z.enum(values, {
    error: (iss) => `must be one of ${values.join(', ')}; not ${shown(iss.input)}`,
  });

const daemonName = text.regex(/^[^/\s]+$/, 'must be an executable name without slashes or spaces');

export const settingsSchema = z.strictObject({
  nodeId: nodeId.optional(),
  nodeName: text.min(1, 'must not be empty'),
  listen: hostPort,
  advertise: hostPort.optional(),
  http: z.strictObject({
    address: ipAddress,
    port,
    token: text.min(16, 'must be at least 16 characters').optional(),
  }),
  stateDir: absolutePath,
  runtimeDir: absolutePath,
  clusterKeyFile: absolutePath.optional(),
  localPolicy: oneOf(['keep-family', 'unix-when-local']),
  logLevel: oneOf(['debug', 'info', 'warn', 'error']),
  deadlines: z.strictObject({
    connectMs: wholeNumber(1, 86_400_000),
    handshakeMs: wholeNumber(1, 86_400_000),
    restoreMs: wholeNumber(1, 86_400_000),
  }),
  dialConcurrency: wholeNumber(1, 65_536),
  maxFrameBytes: wholeNumber(4096, 1024 * 1024 * 1024),
  parentDaemons: z.array(daemonName, { error: 'must be a list of executable names' }),
  placement: z.unknown().optional(),
});

export type Settings = z.output<typeof settingsSchema>;

/**
 * The fields a CLI client reads to find the agent (and the node id, for commands that name
 * this node without asking the agent); other fields are not checked.
 */
export const clientSchema = z.object({
  runtimeDir: absolutePath,
  http: z.object(settingsSchema.shape.http.shape),
  nodeId: settingsSchema.shape.nodeId,
});
