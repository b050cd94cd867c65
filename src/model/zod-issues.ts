/**
 * zod's issues in rewire's words: one `RawIssue` per problem, with a path and a message that
 * says what was expected and what was given (`expected an integer, got '5'`).
 */
import type { z } from 'zod';

import type { PathKey, RawIssue } from './validate.ts';

/** The issues of a failed parse of `input`, in rewire's words. */
export function fromZod(error: z.ZodError, input: unknown): RawIssue[] {
  return error.issues.flatMap((issue) => translate(issue, input));
}

function translate(issue: z.core.$ZodIssue, input: unknown): RawIssue[] {
  const path = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k)) as PathKey[];
  const value = valueAt(input, path);
  const one = (code: string, message: string): RawIssue[] => [{ path, code, message }];

  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        path: [...path, key],
        code: 'unknown_field',
        message: 'unknown field',
      }));
    case 'invalid_type':
      if (value === undefined) return one('required', 'required');
      return one(issue.code, `expected ${expected(issue.expected)}, got ${describe(value)}`);
    case 'too_big':
      return one(issue.code, bound('at most', issue.origin, issue.maximum, issue.inclusive));
    case 'too_small':
      return one(issue.code, bound('at least', issue.origin, issue.minimum, issue.inclusive));
    case 'invalid_value': {
      const values = issue.values.map((v) => describe(v)).join(', ');
      return one(issue.code, `expected one of ${values}, got ${describe(value)}`);
    }
    case 'invalid_format': {
      const format = issue.format === 'base64' ? 'base64 text' : `a ${issue.format}`;
      return one(issue.code, `expected ${format}, got ${describe(value)}`);
    }
    case 'custom':
      return one(String(issue.params?.code ?? 'custom'), issue.message);
    default:
      return one(issue.code, lowerFirst(issue.message));
  }
}

function bound(
  word: string,
  origin: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
): string {
  const strict = inclusive === false ? (word === 'at most' ? 'below' : 'above') : word;
  if (origin === 'array') return `must have ${word} ${limit} items`;
  if (origin === 'string') return `must be ${word} ${limit} characters long`;
  return `must be ${strict} ${limit}`;
}

const EXPECTED: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
};

function expected(type: string): string {
  return EXPECTED[type] ?? `a value of type ${type}`;
}

/** A value as an issue message shows it: strings quoted and cut short, containers named. */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    const text = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return `'${text}'`;
  }
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function valueAt(input: unknown, path: readonly PathKey[]): unknown {
  let at = input;
  for (const key of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<PathKey, unknown>)[key];
  }
  return at;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
