/**
 * A socket option in the JSON form of a manifest, read into the model's `SocketOption`.
 *
 * Given raw, `{level, name, value}` with the value in base64, or by C name with a typed value
 * (`{label: 'SO_SNDBUF', int: 212992}`, `{label: 'SO_LINGER', linger: {onoff, seconds}}`,
 * `{label: 'TCP_CONGESTION', string: 'cubic'}`, `{label: 'SO_RCVTIMEO', timevalMicros}`), or
 * both, as `manifestToJson` writes them; when both are given they must agree. A label rewire
 * does not know is an error unless level, name and value are all given (it is then kept as a
 * description).
 */
import { z } from 'zod';

import { OPTIONS, optionByNumber, type OptionSpec } from '../../ffi/sockopt.ts';
import { fromBase64 } from './json-form.ts';
import {
  TYPED_KEY,
  decodeOptionValue,
  encodeOptionValue,
  sameTypedValue,
  type TypedOptionValue,
} from './option-value.ts';
import type { SocketOption } from './types.ts';
import type { RawIssue } from './validate.ts';

const fields = z.strictObject({
  label: z.string().optional(),
  level: z.int32().optional(),
  name: z.int32().optional(),
  value: z.base64().transform(fromBase64).optional(),
  int: z.int32().optional(),
  linger: z.strictObject({ onoff: z.boolean(), seconds: z.int32() }).optional(),
  string: z.string().optional(),
  timevalMicros: z.int().nonnegative().optional(),
});

type OptionFields = z.output<typeof fields>;

/** One socket option of an endpoint, read into level, name, value bytes and C name. */
export const optionSchema = fields.transform((o, ctx): SocketOption => {
  const resolved = resolveOption(o);
  if ('option' in resolved) return resolved.option;

  for (const i of resolved.problems) {
    ctx.addIssue({ code: 'custom', path: i.path, message: i.message, params: { code: i.code } });
  }
  return z.NEVER;
});

type Resolved = { option: SocketOption } | { problems: RawIssue[] };

const TYPED_KEYS = ['int', 'linger', 'string', 'timevalMicros'] as const;
type TypedKey = (typeof TYPED_KEYS)[number];

function resolveOption(o: OptionFields): Resolved {
  const typedKeys = TYPED_KEYS.filter((k) => o[k] !== undefined);
  if (typedKeys.length > 1) {
    const message = `give one of ${typedKeys.join(', ')}, not several`;
    return problem([typedKeys[1]!], 'conflicting_fields', message);
  }

  const spec = findSpec(o);
  if (spec === undefined) return rawOption(o, typedKeys[0]);
  return namedOption(o, spec, typedKeys[0]);
}

function findSpec(o: OptionFields): OptionSpec | undefined {
  if (o.label !== undefined) return (OPTIONS as Record<string, OptionSpec>)[o.label];
  if (o.level === undefined || o.name === undefined) return undefined;
  return optionByNumber(o.level, o.name);
}

/** An option rewire has no name for: level, name and value must all be there. */
function rawOption(o: OptionFields, typedKey: TypedKey | undefined): Resolved {
  const { label, level, name, value } = o;
  const complete = level !== undefined && name !== undefined && value !== undefined;
  if (label !== undefined && !complete) {
    const message = `'${label}' is not a socket option rewire knows; give level, name and value instead`;
    return problem(['label'], 'unknown_option', message);
  }
  if (typedKey !== undefined) {
    return problem([typedKey], 'unexpected_field', "a typed value needs the option's 'label'");
  }
  if (level === undefined) return problem(['level'], 'required', requiredRaw);
  if (name === undefined) return problem(['name'], 'required', requiredRaw);
  if (value === undefined) return problem(['value'], 'required', requiredRaw);

  return { option: label === undefined ? { level, name, value } : { level, name, value, label } };
}

const requiredRaw = 'required (or give a label and a typed value)';

/** An option rewire knows: the typed value, the raw value or both. */
function namedOption(o: OptionFields, spec: OptionSpec, typedKey: TypedKey | undefined): Resolved {
  const problems = mismatches(o, spec, typedKey);
  if (problems.length > 0) return { problems };

  const typed = typedKey && ({ [typedKey]: o[typedKey] } as TypedOptionValue);
  const value = valueOf(spec, typed, o.value);
  if ('problems' in value) return value;
  return {
    option: { level: spec.level, name: spec.optname, value: value.bytes, label: spec.name },
  };
}

/** Where the given level, name or typed value contradicts the option's spec. */
function mismatches(o: OptionFields, spec: OptionSpec, typedKey: TypedKey | undefined): RawIssue[] {
  const out: RawIssue[] = [];
  if (o.level !== undefined && o.level !== spec.level) {
    const message = `is ${o.level} but ${spec.name} is at level ${spec.level} (${spec.levelName})`;
    out.push({ path: ['level'], code: 'option_mismatch', message });
  }
  if (o.name !== undefined && o.name !== spec.optname) {
    const message = `is ${o.name} but ${spec.name} is option ${spec.optname}`;
    out.push({ path: ['name'], code: 'option_mismatch', message });
  }
  const key = TYPED_KEY[spec.kind];
  if (typedKey !== undefined && typedKey !== key) {
    const message = `${spec.name} takes '${key}', not '${typedKey}'`;
    out.push({ path: [typedKey], code: 'wrong_kind', message });
  }
  return out;
}

/** The value bytes: from the typed value, the raw value, or both when they agree. */
function valueOf(
  spec: OptionSpec,
  typed: TypedOptionValue | undefined,
  raw: Uint8Array | undefined,
): { bytes: Uint8Array } | { problems: RawIssue[] } {
  const key = TYPED_KEY[spec.kind];
  if (typed === undefined && raw === undefined) {
    return problem([], 'required', `${spec.name} needs a value: give '${key}' or a base64 'value'`);
  }
  if (typed === undefined) return { bytes: raw! };
  if (raw === undefined) return { bytes: encodeOptionValue(spec.kind, typed) };

  const decoded = decodeOptionValue(spec.kind, raw);
  if (decoded !== undefined && sameTypedValue(decoded, typed)) return { bytes: raw };
  return problem(['value'], 'conflicting_fields', `does not hold the same value as '${key}'`);
}

function problem(path: RawIssue['path'], code: string, message: string): { problems: RawIssue[] } {
  return { problems: [{ path, code, message }] };
}
