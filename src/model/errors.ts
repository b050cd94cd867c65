/**
 * The errors of the manifest model: bad wire bytes (`FrameError`), a manifest or placement
 * that fails validation (`ManifestError`), and an endpoint or process key that does not
 * parse (`IdError`).
 */
import { RewireError } from '../../ffi/errors.ts';

/** One validation problem, as shown to people and returned in HTTP 400 bodies. */
export interface Issue {
  /** Where the problem is, e.g. `endpoints[3].fds[0]`; empty for the document as a whole. */
  path: string;
  /** A stable machine-readable kind, e.g. `duplicate_fd`, `required`, `invalid_type`. */
  code: string;
  message: string;
}

/** Bytes from a peer or a local client that are not a valid frame of `proto/rewire.proto`. */
export class FrameError extends RewireError {
  override name = 'FrameError';

  constructor(message: string, options?: ErrorOptions) {
    super('EFRAME', message, options);
  }
}

/**
 * A manifest (code `EMANIFEST`) or a placement (code `EPLACEMENT`) that cannot be used. The
 * message names the failed action, then has one line per issue with its path:
 * `Cannot read manifest: 2 problems\n  endpoints[3].fds[0]: fd 5 appears twice (...)`; a lone
 * issue about the document as a whole (a file that is missing, text that is not JSON) follows
 * the action on the same line. `issues` has them as data, for HTTP 400 bodies; when only the
 * first of many are kept, `total` (in the options) is the number of problems found.
 */
export class ManifestError extends RewireError {
  override name = 'ManifestError';
  readonly issues: Issue[];

  constructor(
    code: 'EMANIFEST' | 'EPLACEMENT',
    action: string,
    issues: Issue[],
    options?: ErrorOptions & { total?: number },
  ) {
    super(code, ManifestError.format(action, issues, options?.total ?? issues.length), options);
    this.issues = issues;
  }

  private static format(action: string, issues: Issue[], total: number): string {
    const only = issues.length === 1 ? issues[0]! : undefined;
    if (only?.path === '') return `${action}: ${only.message}`;

    const count = total === 1 ? '1 problem' : `${total} problems`;
    const lines = issues.map((i) => `\n  ${i.path === '' ? '(top level)' : i.path}: ${i.message}`);
    return `${action}: ${count}${lines.join('')}`;
  }

  override toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, issues: this.issues };
  }
}

/** Text that is not a process or endpoint key (`ids.ts`). */
export class IdError extends RewireError {
  override name = 'IdError';

  constructor(message: string) {
    super('EID', message);
  }
}
