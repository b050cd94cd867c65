/**
 * The CLI's client of the local agent's HTTP API: over the API unix socket by default, or over
 * TCP with `--url` (and the bearer token from REWIRE_HTTP_TOKEN for mutating routes).
 */
import { RewireError } from '../../ffi/errors.ts';

export type Target =
  { kind: 'unix'; path: string } | { kind: 'tcp'; url: string; token: string | undefined };

/** Nothing answers at the target (code `EUNREACHABLE`, exit code 3). */
export class UnreachableError extends RewireError {
  override name = 'UnreachableError';

  constructor(target: Target, cause: unknown) {
    const code = (cause as { code?: string }).code ?? 'ERROR';
    super(
      'EUNREACHABLE',
      `Cannot reach the agent at ${describeTarget(target)}: ${code}${hint(target, code)}`,
      { cause },
    );
  }
}

function hint(target: Target, code: string): string {
  if (code === 'EACCES' || code === 'EPERM') {
    return ": run as the agent's user (root), or use --url http://127.0.0.1:7781";
  }
  if (target.kind === 'unix') return ": is 'rewire agent' running? (systemctl status rewire)";
  return ": is 'rewire agent' running, with its API on that address?";
}

/** The agent answered with an error; `code` and `issues` are the agent's. */
export class AgentError extends RewireError {
  override name = 'AgentError';
  readonly status: number;
  readonly issues: unknown[] | undefined;

  constructor(status: number, code: string, message: string, issues: unknown[] | undefined) {
    super(code, message);
    this.status = status;
    this.issues = issues;
  }

  override toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, status: this.status, issues: this.issues };
  }
}

export function describeTarget(target: Target): string {
  return target.kind === 'unix' ? `unix socket '${target.path}'` : `'${target.url}'`;
}

export class AgentClient {
  constructor(readonly target: Target) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /** GET returning the body as text (for /metrics). */
  async text(path: string): Promise<string> {
    const response = await this.send('GET', path, undefined);
    if (!response.ok) await this.fail(response);
    return response.text();
  }

  /**
   * One request; the body, when given, is sent as JSON (a string is sent as it is).
   * @throws {UnreachableError} when nothing answers
   * @throws {AgentError} when the agent answers with an error
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    if (!response.ok) await this.fail(response);
    return (await response.json()) as T;
  }

  private async send(method: string, path: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.target.kind === 'tcp' && this.target.token !== undefined) {
      headers.authorization = `Bearer ${this.target.token}`;
    }
    const init: RequestInit & { unix?: string } = { method, headers };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);

    const base =
      this.target.kind === 'unix' ? 'http://localhost' : this.target.url.replace(/\/+$/, '');
    if (this.target.kind === 'unix') init.unix = this.target.path;
    try {
      return await fetch(`${base}${path}`, init);
    } catch (err) {
      throw new UnreachableError(this.target, err);
    }
  }

  private async fail(response: Response): Promise<never> {
    const text = await response.text();
    let parsed: { error?: { code?: string; message?: string; issues?: unknown[] } } = {};
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not an API error body (a proxy, or another server on the port): report the status.
    }
    const error = parsed.error ?? {};
    const message =
      error.message ?? `HTTP ${response.status} ${response.statusText}: ${text.slice(0, 200)}`;
    throw new AgentError(
      response.status,
      error.code ?? `EHTTP_${response.status}`,
      message,
      error.issues,
    );
  }
}
