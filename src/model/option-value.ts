/**
 * Socket option values as people write them: the typed forms of the JSON manifest (`int`,
 * `linger`, `string`, `timevalMicros`) and the value bytes getsockopt returns and setsockopt
 * takes (LP64, little-endian: both architectures rewire runs on).
 */
import { Sizes } from '../../ffi/arch.ts';
import type { OptionKind } from '../../ffi/sockopt.ts';

export interface LingerValue {
  onoff: boolean;
  seconds: number;
}

/** An option value in its typed form; exactly one key, the one of the option's kind. */
export type TypedOptionValue =
  { int: number } | { linger: LingerValue } | { string: string } | { timevalMicros: number };

/** The JSON key of each option kind's typed value. */
export const TYPED_KEY = {
  int: 'int',
  linger: 'linger',
  string: 'string',
  timeval: 'timevalMicros',
} as const satisfies Record<OptionKind, string>;

/** The value bytes of a typed value; the caller has checked that it matches `kind`. */
export function encodeOptionValue(kind: OptionKind, typed: TypedOptionValue): Uint8Array {
  if (kind === 'string' && 'string' in typed) return new TextEncoder().encode(typed.string);

  const size = kind === 'linger' ? Sizes.linger : kind === 'timeval' ? Sizes.timeval : 4;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  if ('int' in typed) view.setInt32(0, typed.int, true);
  if ('linger' in typed) {
    view.setInt32(0, typed.linger.onoff ? 1 : 0, true);
    view.setInt32(4, typed.linger.seconds, true);
  }
  if ('timevalMicros' in typed) {
    view.setBigInt64(0, BigInt(Math.floor(typed.timevalMicros / 1_000_000)), true);
    view.setBigInt64(8, BigInt(typed.timevalMicros % 1_000_000), true);
  }
  return out;
}

/**
 * The typed form of value bytes, or undefined when the bytes do not have the size of `kind`
 * (the raw bytes then stand alone).
 */
export function decodeOptionValue(
  kind: OptionKind,
  value: Uint8Array,
): TypedOptionValue | undefined {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  switch (kind) {
    case 'int':
      return value.length === 4 ? { int: view.getInt32(0, true) } : undefined;
    case 'linger':
      if (value.length !== Sizes.linger) return undefined;
      return { linger: { onoff: view.getInt32(0, true) !== 0, seconds: view.getInt32(4, true) } };
    case 'timeval':
      return value.length === Sizes.timeval ? timeval(view) : undefined;
    case 'string': {
      const end = value.indexOf(0);
      return { string: new TextDecoder().decode(end < 0 ? value : value.subarray(0, end)) };
    }
  }
}

function timeval(view: DataView): TypedOptionValue | undefined {
  const micros = view.getBigInt64(0, true) * 1_000_000n + view.getBigInt64(8, true);
  if (micros < 0n || micros > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { timevalMicros: Number(micros) };
}

/** Whether two typed values say the same thing. */
export function sameTypedValue(a: TypedOptionValue, b: TypedOptionValue): boolean {
  if ('int' in a) return 'int' in b && a.int === b.int;
  if ('string' in a) return 'string' in b && a.string === b.string;
  if ('timevalMicros' in a) return 'timevalMicros' in b && a.timevalMicros === b.timevalMicros;
  return (
    'linger' in b && a.linger.onoff === b.linger.onoff && a.linger.seconds === b.linger.seconds
  );
}
