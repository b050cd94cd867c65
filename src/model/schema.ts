/**
 * Reading the JSON form of manifests and placements (files and the HTTP API, SPEC §4) into
 * the model, with zod: the shape first, then the rules of `validate.ts` in `superRefine`.
 * Every problem is reported with the path of its field.
 *
 * The JSON form (see `json-form.ts`): keys as in `types.ts`; 64-bit ids as a decimal string
 * or a safe non-negative integer; byte strings as base64; roles, families and types as
 * strings. A socket option is given either raw, `{level, name, value}` (value in base64), or
 * by its C name with a typed value: `{label: 'SO_SNDBUF', int: 212992}`,
 * `{label: 'SO_LINGER', linger: {onoff: true, seconds: 5}}`,
 * `{label: 'TCP_CONGESTION', string: 'cubic'}`, `{label: 'SO_RCVTIMEO', timevalMicros: 1500000}`.
 * Both may be given (as `manifestToJson` writes them); they must then agree.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

import { ManifestError, type Issue } from './errors.ts';
import { fromBase64 } from './json-form.ts';
import { optionSchema } from './option-schema.ts';
import type { Manifest, Placement } from './types.ts';
import { issueError, manifestIssues, placementIssues, type RawIssue } from './validate.ts';
import { describe, fromZod } from './zod-issues.ts';

export { manifestToJson, placementToJson } from './json-form.ts';
export type { ManifestJson, PlacementJson } from './json-form.ts';

const U64_MAX = (1n << 64n) - 1n;

/** A 64-bit id: a decimal string or a safe non-negative integer, read as a bigint. */
const u64 = z.unknown().transform((v, ctx): bigint => {
  const fail = (code: string, message: string) => {
    ctx.addIssue({ code: 'custom', message, params: { code } });
    return z.NEVER;
  };

  if (v === undefined) return fail('required', 'required');
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) {
    const message = `${v} is above 2^53-1, where JSON numbers lose digits: write it as a decimal string`;
    return fail('too_big', message);
  }
  if (typeof v !== 'string' || !/^\d{1,20}$/.test(v)) {
    const message = `expected a decimal string or a safe non-negative integer, got ${describe(v)}`;
    return fail('invalid_type', message);
  }
  const n = BigInt(v);
  return n <= U64_MAX ? n : fail('too_big', `'${v}' is above 2^64-1`);
});

const base64Bytes = z.base64().transform(fromBase64);
const noBytes = () => new Uint8Array(0);

const processId = z.strictObject({
  hostId: u64,
  pid: z.int32(),
  birthTime: u64,
  generation: z.uint32(),
});

const endpointId = z.strictObject({ process: processId, conn: z.uint32() });

const family = z.enum(['inet', 'inet6', 'unix']);

const address = z.strictObject({
  family,
  address: z.string().optional(),
  port: z.int().optional(),
  path: z.string().optional(),
  abstract: z.string().optional(),
  scopeId: z.uint32().optional(),
  flowinfo: z.uint32().optional(),
});

const fcntl = z.strictObject({
  statusFlags: z.int32().default(0),
  owner: z.int32().default(0),
  signal: z.int32().default(0),
  cloexec: z.boolean().default(false),
});

const endpoint = z.strictObject({
  id: endpointId,
  peer: endpointId.optional(),
  role: z.enum(['connect', 'accept', 'listen']),
  family,
  type: z.enum(['stream', 'seqpacket']).default('stream'),
  protocol: z.int32().default(0),
  fds: z.array(z.int()),
  local: address.optional(),
  remote: address.optional(),
  backlog: z.int32().optional(),
  options: z.array(optionSchema).default([]),
  fcntl: fcntl.optional(),
  drained: base64Bytes.default(noBytes),
  peerNode: u64.optional(),
  peerExecutable: z.string().min(1).max(255).optional(),
  unsent: base64Bytes.optional(),
});

/** The JSON form of a manifest, read into the model and checked against every rule. */
export const manifestSchema = z
  .strictObject({
    process: processId,
    executable: z.string(),
    pid: z.int32().default(0),
    checkpointPid: z.int32().optional(),
    nodeId: u64.optional(),
    job: z.string().optional(),
    endpoints: z.array(endpoint),
  })
  .superRefine((m, ctx) => report(manifestIssues(m), ctx));

const node = z.strictObject({
  nodeId: u64,
  address: z.string(),
  port: z.int(),
  name: z.string().optional(),
  departed: z.boolean().optional(),
});

/** The JSON form of a placement, read into the model and checked against every rule. */
export const placementSchema = z
  .strictObject({
    version: u64,
    nodes: z.array(node).default([]),
    processes: z.array(z.strictObject({ process: processId, nodeId: u64 })).default([]),
    replacements: z.array(z.strictObject({ old: processId, new: processId })).default([]),
  })
  .superRefine((p, ctx) => report(placementIssues(p), ctx));

function report(issues: RawIssue[], ctx: z.RefinementCtx): void {
  for (const i of issues) {
    ctx.addIssue({ code: 'custom', path: i.path, message: i.message, params: { code: i.code } });
  }
}

// ---- Parsing ------------------------------------------------------------------------------

/**
 * A manifest from its JSON form (already parsed from text).
 * @throws {ManifestError} (EMANIFEST) with one issue per problem, each naming its field
 */
export function parseManifest(json: unknown, action = 'Cannot read manifest'): Manifest {
  const result = manifestSchema.safeParse(json);
  if (result.success) return result.data;
  throw issueError('EMANIFEST', action, fromZod(result.error, json));
}

/**
 * A placement from its JSON form (already parsed from text).
 * @throws {ManifestError} (EPLACEMENT) with one issue per problem, each naming its field
 */
export function parsePlacement(json: unknown, action = 'Cannot read placement'): Placement {
  const result = placementSchema.safeParse(json);
  if (result.success) return result.data;
  throw issueError('EPLACEMENT', action, fromZod(result.error, json));
}

/**
 * A manifest from a JSON file.
 * @throws {ManifestError} (EMANIFEST) naming the file when it cannot be read, is not JSON, or
 *   is not a valid manifest
 */
export function loadManifestFile(path: string): Manifest {
  const action = `Cannot read manifest '${path}'`;
  return parseManifest(readJson(path, action, 'EMANIFEST'), action);
}

/**
 * A placement from a JSON file.
 * @throws {ManifestError} (EPLACEMENT) naming the file when it cannot be read, is not JSON, or
 *   is not a valid placement
 */
export function loadPlacementFile(path: string): Placement {
  const action = `Cannot read placement '${path}'`;
  return parsePlacement(readJson(path, action, 'EPLACEMENT'), action);
}

function readJson(path: string, action: string, code: 'EMANIFEST' | 'EPLACEMENT'): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? String(cause);
    throw new ManifestError(code, action, [topIssue('file', fileProblem(why))], { cause });
  }

  try {
    return JSON.parse(text);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new ManifestError(code, action, [topIssue('json_syntax', `not JSON: ${why}`)], { cause });
  }
}

function fileProblem(errno: string): string {
  if (errno === 'ENOENT') return 'no such file (ENOENT)';
  if (errno === 'EACCES') return 'permission denied (EACCES)';
  if (errno === 'EISDIR') return 'it is a directory (EISDIR)';
  return errno;
}

function topIssue(code: string, message: string): Issue {
  return { path: '', code, message };
}
