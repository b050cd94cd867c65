/** The systemd unit and build/install.sh, checked with the tools operators would use. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const buildDir = join(import.meta.dir, '../../build');
const unitPath = join(buildDir, 'rewire.service');
const installPath = join(buildDir, 'install.sh');
const unit = readFileSync(unitPath, 'utf8');

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rewire-packaging-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function run(cmd: string[], env: Record<string, string> = {}) {
  const child = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, code };
}

/** The unit's settings as `key → values` (a key may repeat). */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('systemd unit', () => {
  const s = settings(unit);

  test('is a notify service whose stop leaves restored processes running', () => {
    expect(s.get('Type')).toEqual(['notify']);
    expect(s.get('NotifyAccess')).toEqual(['main']);
    expect(s.get('KillMode')).toEqual(['process']);
    expect(s.get('LimitNOFILE')).toEqual(['1048576']);
    expect(s.get('ExecStart')).toEqual(['/usr/local/bin/rewire agent']);
    expect(s.get('RestartPreventExitStatus')).toEqual(['2 6']);
  });

  test("is hardened without blocking Bun's JIT", () => {
    expect(s.has('MemoryDenyWriteExecute')).toBe(false);
    expect(s.get('ProtectSystem')).toEqual(['strict']);
    expect(s.get('ReadWritePaths')?.[0]).toBe('/var/lib/rewire /run/rewire');
    expect(s.get('StateDirectory')).toEqual(['rewire']);
    expect(s.get('RuntimeDirectory')).toEqual(['rewire']);
    expect(s.get('ConfigurationDirectory')).toEqual(['rewire']);
    expect(s.get('NoNewPrivileges')).toEqual(['yes']);
  });

  test.skipIf(Bun.which('systemd-analyze') === null)(
    'passes systemd-analyze verify without warnings',
    async () => {
      const copy = join(dir, 'rewire.service');
      writeFileSync(copy, unit.replace('ExecStart=/usr/local/bin/rewire', 'ExecStart=/bin/true'));
      const result = await run(['systemd-analyze', 'verify', copy]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    },
  );
});

describe('install.sh', () => {
  let bin: string;
  let log: string;

  beforeAll(() => {
    bin = join(dir, 'bin');
    log = join(dir, 'calls.log');
    const fake = (name: string, body: string) => {
      const path = join(bin, name);
      writeFileSync(path, `#!/usr/bin/env bash\necho "${name} $*" >>"${log}"\n${body}\n`);
      chmodSync(path, 0o755);
    };
    Bun.spawnSync(['mkdir', '-p', bin, join(dir, 'dist')]);
    for (const exe of ['rewire-linux-x64', 'rewire-linux-arm64']) {
      writeFileSync(join(dir, 'dist', exe), '#!/bin/true\n');
      chmodSync(join(dir, 'dist', exe), 0o755);
    }
    // Remote facts by host name: arm* hosts are aarch64, user@ hosts are not root.
    fake(
      'ssh',
      [
        'for host; do :; done',
        'for a; do case "$a" in *@*|node*) host="$a";; esac; done',
        'if [[ "${!#}" == "uname -m; id -u; mktemp -d" ]]; then',
        '  if [[ "$host" == *arm* ]]; then echo aarch64; else echo x86_64; fi',
        '  if [[ "$host" == *@* ]]; then echo 1000; else echo 0; fi',
        '  echo /tmp/rw.1',
        'fi',
      ].join('\n'),
    );
    fake('scp', '');
  });

  const env = () => ({ PATH: `${bin}:${process.env.PATH}` });

  const noShellcheck = Bun.which('shellcheck') === null;
  if (noShellcheck) console.warn('skip: install.sh shellcheck: shellcheck is not installed here');
  test.skipIf(noShellcheck)('is shellcheck-clean', async () => {
    const result = await run(['shellcheck', installPath]);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  test('runs with set -euo pipefail and prints usage without nodes', async () => {
    expect(readFileSync(installPath, 'utf8')).toContain('\nset -euo pipefail\n');
    const none = await run(['bash', installPath]);
    expect(none.code).toBe(2);
    expect(none.stderr).toStartWith('Usage: build/install.sh');
    const help = await run(['bash', installPath, '-h']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('-k FILE');
  });

  test('copies the executable for each node’s CPU and enables the service', async () => {
    writeFileSync(log, '');
    const nodes = join(dir, 'nodes.txt');
    writeFileSync(nodes, '# cluster\nnode-x86\n\nadmin@node-arm  # a user, not root\n');
    const config = join(dir, 'cfg.toml');
    const key = join(dir, 'k.key');
    writeFileSync(config, '');
    writeFileSync(key, 'ab'.repeat(32));

    const result = await run(
      ['bash', installPath, '-d', join(dir, 'dist'), '-f', nodes, '-c', config, '-k', key],
      env(),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const calls = readFileSync(log, 'utf8').trim().split('\n');

    expect(calls).toContain(
      `scp -o BatchMode=yes -o ConnectTimeout=10 -q ${join(dir, 'dist', 'rewire-linux-x64')} node-x86:/tmp/rw.1/rewire`,
    );
    expect(calls).toContain(
      `scp -o BatchMode=yes -o ConnectTimeout=10 -q ${join(dir, 'dist', 'rewire-linux-arm64')} admin@node-arm:/tmp/rw.1/rewire`,
    );
    expect(calls).toContain(
      `scp -o BatchMode=yes -o ConnectTimeout=10 -q ${key} admin@node-arm:/tmp/rw.1/cluster.key`,
    );
    const remote = calls.filter((c) => c.startsWith('ssh') && c.includes('systemctl'));
    expect(remote).toHaveLength(2);
    expect(remote[0]).toContain(" install -m 0755 '/tmp/rw.1/rewire' /usr/local/bin/rewire");
    expect(remote[0]).not.toContain('sudo');
    expect(remote[1]).toContain(
      "sudo install -m 0600 '/tmp/rw.1/cluster.key' /var/lib/rewire/cluster.key",
    );
    expect(remote[1]).toContain('sudo systemctl enable rewire && sudo systemctl restart rewire');
  });

  test('stops at a node with an unknown CPU, saying so', async () => {
    const fakeBin = join(dir, 'bin2');
    Bun.spawnSync(['mkdir', '-p', fakeBin]);
    writeFileSync(join(fakeBin, 'ssh'), '#!/usr/bin/env bash\nprintf "riscv64\\n0\\n/tmp/x\\n"\n');
    chmodSync(join(fakeBin, 'ssh'), 0o755);
    const result = await run(['bash', installPath, '-d', join(dir, 'dist'), 'node1'], {
      PATH: `${fakeBin}:${process.env.PATH}`,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("install.sh: node1: no rewire executable for CPU 'riscv64'\n");
  });
});
