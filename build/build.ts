/**
 * `bun run build`: one self-contained executable per target, `dist/rewire-linux-x64` and
 * `dist/rewire-linux-arm64`, to copy to nodes (see build/install.sh). Each is compiled with the
 * Bun runtime of its target from the npm packages `@oven/bun-linux-x64` and
 * `@oven/bun-linux-aarch64` (devDependencies pinned to the version of `bun`), passed with
 * `--compile-executable-path`, so the build downloads nothing. Writes `dist/SHA256SUMS`.
 * Cross-compiling needs `npm install` to have kept the other target's package (`.npmrc`).
 *
 * Usage: bun run build [--target x64|arm64]... [--outdir DIR]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dir, '..');

interface Target {
  name: string;
  bunTarget: string;
  runtimePackage: string;
  /** `process.arch` of a host of this target. */
  arch: string;
  /** ELF e_machine of the result: EM_X86_64 or EM_AARCH64. */
  machine: number;
}

export const targets: Record<string, Target> = {
  x64: {
    name: 'linux-x64',
    bunTarget: 'bun-linux-x64',
    runtimePackage: '@oven/bun-linux-x64',
    arch: 'x64',
    machine: 62,
  },
  arm64: {
    name: 'linux-arm64',
    bunTarget: 'bun-linux-arm64',
    runtimePackage: '@oven/bun-linux-aarch64',
    arch: 'arm64',
    machine: 183,
  },
};

/** The Bun runtime binary of `target`, checked to be the version `bun` is pinned to. */
export function runtimeOf(target: Target): string {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const wanted: string = pkg.devDependencies.bun;
  let manifestPath: string;
  try {
    manifestPath = Bun.resolveSync(`${target.runtimePackage}/package.json`, root);
  } catch {
    throw new Error(
      `Cannot build ${target.name}: ${target.runtimePackage} is not installed; run npm install`,
    );
  }
  const found: string = JSON.parse(readFileSync(manifestPath, 'utf8')).version;
  if (found !== wanted) {
    throw new Error(
      `Cannot build ${target.name}: ${target.runtimePackage} is ${found}, bun is pinned to ${wanted}; run npm install`,
    );
  }
  const binary = join(dirname(manifestPath), 'bin', 'bun');
  if (existsSync(binary)) return binary;
  // The host's own runtime package is emptied by the postinstall of `bun`, which moves the
  // binary into node_modules/bun: that is the Bun running this script.
  if (target.arch === process.arch && Bun.version === wanted) return process.execPath;
  throw new Error(`Cannot build ${target.name}: ${binary} is missing; run npm ci`);
}

/** The e_machine field of an ELF file, or -1 when it is not ELF. */
export function elfMachine(path: string): number {
  const head = new Uint8Array(readFileSync(path).subarray(0, 20));
  if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return -1;
  return new DataView(head.buffer).getUint16(18, true);
}

/** Compiles src/main.ts for `target` into `outdir`; returns the executable's path. */
export async function buildTarget(target: Target, outdir: string): Promise<string> {
  const outfile = join(outdir, `rewire-${target.name}`);
  const args = [
    'build',
    join(root, 'src/main.ts'),
    // The reactor's poller thread runs this file: it must be in the executable too.
    join(root, 'ffi/epoll-worker.ts'),
    '--compile',
    `--target=${target.bunTarget}`,
    `--compile-executable-path=${runtimeOf(target)}`,
    `--outfile=${outfile}`,
    // A node's working directory must not change how the agent runs.
    '--no-compile-autoload-dotenv',
    '--no-compile-autoload-bunfig',
  ];
  const child = Bun.spawn([process.execPath, ...args], {
    cwd: root,
    stdout: 'inherit',
    stderr: 'inherit',
  });
  const code = await child.exited;
  if (code !== 0) throw new Error(`Cannot build ${target.name}: bun build exited with ${code}`);

  const machine = elfMachine(outfile);
  if (machine !== target.machine) {
    throw new Error(
      `Cannot build ${target.name}: ${outfile} has ELF machine ${machine}, not ${target.machine}`,
    );
  }
  return outfile;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { target: { type: 'string', multiple: true }, outdir: { type: 'string' } },
  });
  const names = values.target ?? Object.keys(targets);
  const unknown = names.filter((n) => !(n in targets));
  if (unknown.length > 0) {
    console.error(
      `build: unknown target '${unknown[0]}': use ${Object.keys(targets).join(' or ')}`,
    );
    return 2;
  }
  const outdir = values.outdir ?? join(root, 'dist');
  mkdirSync(outdir, { recursive: true });

  const built: string[] = [];
  for (const name of names) built.push(await buildTarget(targets[name]!, outdir));
  const sums = built.map((f) => `${sha256(f)}  ${relative(outdir, f)}`).join('\n');
  writeFileSync(join(outdir, 'SHA256SUMS'), `${sums}\n`);
  for (const f of built)
    console.log(`built ${relative(root, f)} (${(statSync(f).size / 2 ** 20).toFixed(1)} MiB)`);
  return 0;
}

if (import.meta.main) {
  try {
    process.exit(await main(process.argv.slice(2)));
  } catch (err) {
    console.error(`build: ${(err as Error).message}`);
    process.exit(1);
  }
}
