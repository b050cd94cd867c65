/** Runs `rewire` (src/main.ts) as a subprocess, the way operators and scripts run it. */
import { join } from 'node:path';

export const mainPath = join(import.meta.dir, '../../src/main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for `--json`). */
  json(): any;
}

/** The environment without REWIRE_* and NOTIFY_SOCKET from the test runner's own. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('REWIRE_') && k !== 'NOTIFY_SOCKET') env[k] = v;
  }
  return { ...env, ...extra };
}

export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<CliResult> {
  const child = Bun.spawn([process.execPath, mainPath, ...args], {
    env: options.env ?? cleanEnv(),
    stdin: options.stdin === undefined ? 'ignore' : new TextEncoder().encode(options.stdin),
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}
