/**
 * How errors become HTTP responses: `{ "error": { code, message, issues? } }` with the
 * RewireError's stable code, and a status chosen from the code.
 */
import { RewireError } from '../../ffi/errors.ts';

/** An error of the request itself (bad query, body, media type, auth), with its status. */
export class ApiError extends RewireError {
  override name = 'ApiError';
  readonly status: number;

  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

const statusByCode: Record<string, number> = {
  EMANIFEST: 400,
  EPLACEMENT: 400,
  EID: 400,
  EBAD_REQUEST: 400,
  EBAD_JSON: 400,
  EUNAUTHORIZED: 401,
  EFORBIDDEN: 403,
  ECAPTURE_DENIED: 403,
  ENOPROC: 404,
  EZOMBIE: 410,
  EVANISHED: 410,
  ENOT_FOUND: 404,
  ENO_PLACEMENT: 404,
  EMETHOD: 405,
  EPLACEMENT_STALE: 409,
  EBODY_TOO_LARGE: 413,
  EMEDIA_TYPE: 415,
  ENOT_READY: 503,
};

/** The HTTP status for an error thrown by a route. */
export function statusOf(err: unknown): number {
  if (err instanceof ApiError) return err.status;
  if (!(err instanceof RewireError)) return 500;
  const known = statusByCode[err.code];
  if (known !== undefined) return known;
  if (err.code.endsWith('_NOT_FOUND')) return 404;
  if (/_(STALE|EXISTS|CONFLICT|BUSY|ACTIVE)$/.test(err.code)) return 409;
  if (Array.isArray((err as { issues?: unknown }).issues)) return 400;
  return 500;
}

export interface ErrorBody {
  error: { code: string; message: string; issues?: unknown[] };
}

/** The JSON body for `err`; errors that are not RewireErrors get code EINTERNAL. */
export function errorBody(err: unknown): ErrorBody {
  if (!(err instanceof RewireError)) {
    const message = err instanceof Error ? err.message : String(err);
    return { error: { code: 'EINTERNAL', message: `Internal error: ${message}` } };
  }
  const issues = (err as { issues?: unknown }).issues;
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  if (Array.isArray(issues)) body.error.issues = issues;
  return body;
}
