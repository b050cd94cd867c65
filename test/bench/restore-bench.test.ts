/**
 * The restore benchmark runs end to end (two agent processes, two restoring processes, the
 * two C programs) and ends with its documented lines. Timings are not asserted here: they are
 * what the benchmark reports.
 */
import { expect, test } from 'bun:test';
import { join } from 'node:path';

const repo = join(import.meta.dir, '..', '..');
const noCc = Bun.which('cc') === null;
if (noCc) console.warn('skip: restore benchmark: no C compiler (cc) for its baseline here');

test.skipIf(noCc)(
  'bench:restore with a few connections prints its floor and result lines',
  async () => {
    const run = Bun.spawn([process.execPath, join(repo, 'bench/restore.ts'), '--n', '40'], {
      cwd: repo,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const killer = setTimeout(() => run.kill('SIGKILL'), 50_000);
    const [stdout, stderr, code] = await Promise.all([
      new Response(run.stdout).text(),
      new Response(run.stderr).text(),
      run.exited,
    ]);
    clearTimeout(killer);
    expect(stderr).not.toContain('error');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    const number = '\\d+\\.\\d+';
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^restore n=40 agent_s=${number} c_s=${number} ratio=${number} agent_rss_mb=${number}$`,
      ),
    );
    expect(lines.at(-2)).toMatch(
      new RegExp(`^floor n=40 floor_s=${number} floor_ratio=${number} agent_over_floor=${number}$`),
    );
  },
);
