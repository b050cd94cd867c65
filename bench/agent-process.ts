/**
 * One agent in its own process, for the restore benchmark and for tests that kill an agent:
 * `bun bench/agent-process.ts NODE_ID PORT RUNTIME_DIR PLACEMENT_JSON_FILE [KEY_HEX]`.
 * Prints `ready` when it listens.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startAgent } from '../src/agent/agent.ts';
import { applyRuntimeFlags } from '../src/agent/runtime-flags.ts';
import { createLogger } from '../src/log/logger.ts';
import { loadPlacementFile } from '../src/model/schema.ts';

// The same JavaScriptCore settings as `rewire agent` (see src/agent/runtime-flags.ts).
applyRuntimeFlags();

const [nodeId, port, runtimeDir, placementFile, keyHex] = process.argv.slice(2);
if (!nodeId || !port || !runtimeDir || !placementFile) {
  console.error('usage: agent-process.ts NODE_ID PORT RUNTIME_DIR PLACEMENT_JSON_FILE');
  process.exit(2);
}

const agent = await startAgent(
  {
    nodeId: BigInt(nodeId),
    nodeName: `bench-${nodeId}`,
    listen: { address: '127.0.0.1', port: Number(port) },
    advertise: { address: '127.0.0.1', port: Number(port) },
    clusterKey: keyHex ? new Uint8Array(Buffer.from(keyHex, 'hex')) : new Uint8Array(32).fill(1),
    http: { address: '127.0.0.1', port: 0, token: undefined },
    stateDir: mkdtempSync(join(tmpdir(), 'rewire-bench-')),
    runtimeDir,
    localPolicy: 'keep-family',
    deadlines: { connectMs: 10_000, handshakeMs: 60_000, restoreMs: 120_000 },
    dialConcurrency: Number(process.env.REWIRE_BENCH_DIALS ?? 256),
    maxFrameBytes: 256 * 1024 * 1024,
    parentDaemons: [],
    placement: loadPlacementFile(placementFile),
    logLevel: (process.env.REWIRE_BENCH_LOG as 'info' | undefined) ?? 'warn',
  },
  createLogger({ level: (process.env.REWIRE_BENCH_LOG as 'info' | undefined) ?? 'warn' }),
);
process.on('SIGTERM', () => {
  if (process.env.REWIRE_BENCH_VERBOSE)
    console.error('memory', JSON.stringify(process.memoryUsage()));
  void agent.stop().then(() => process.exit(0));
});
console.log('ready');
