/**
 * JavaScriptCore settings the agent runs with. Its work comes in bursts (a restore of
 * thousands of connections, then nothing) and is bound by system calls; JSC's top compiler
 * tier (FTL) spends more CPU compiling that code than it saves, which on a small node takes a
 * core away from the restore itself (measured: about a third less CPU for 10,000 connections
 * on two cores). JSC reads its settings from the environment only at start-up, so the agent
 * re-executes itself once with them set; the pid stays the same (systemd sees no change).
 */
import { execve } from '../../ffi/index.ts';

const SETTINGS: Record<string, string> = { BUN_JSC_useFTLJIT: 'false' };

/** Whether every setting is in the environment already. */
export function runtimeFlagsSet(env: Record<string, string | undefined> = process.env): boolean {
  return Object.entries(SETTINGS).every(([key, value]) => env[key] === value);
}

/**
 * Re-executes this process with the settings unless they are set, or REWIRE_KEEP_JIT=1 asks
 * to keep JSC's defaults. Returns only when nothing was to be done; throws if execve fails.
 */
export function applyRuntimeFlags(): void {
  if (runtimeFlagsSet() || process.env.REWIRE_KEEP_JIT === '1') return;
  const env = { ...(process.env as Record<string, string>), ...SETTINGS };
  // A compiled executable sees its embedded entry point (under /$bunfs/) as argv[1].
  const compiled = Bun.main.startsWith('/$bunfs/');
  const args = compiled ? process.argv.slice(2) : process.argv.slice(1);
  execve(process.execPath, [process.execPath, ...args], env);
}
