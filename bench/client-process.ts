/**
 * One restarting process for the restore benchmark: `bun bench/client-process.ts SOCKET
 * MANIFEST_JSON`. Loads the manifest and prints `loaded`; on a line on stdin restores through
 * its agent, checks every endpoint is live with an fd, and prints {start, end, live,
 * cpuSeconds} (epoch milliseconds; CPU seconds of the restore) as JSON.
 */
import { close } from '../ffi/index.ts';
import { restoreThroughAgent } from '../src/control/client.ts';
import { loadManifestFile } from '../src/model/schema.ts';

const [socketPath, manifestFile] = process.argv.slice(2);
if (!socketPath || !manifestFile) {
  console.error('usage: client-process.ts SOCKET MANIFEST_JSON');
  process.exit(2);
}
const manifest = loadManifestFile(manifestFile);
// Both clients start together: loading a large manifest takes a while, and one client still
// loading must not count against the other's restore.
console.log('loaded');
for await (const _ of console) break;
const cpuBefore = process.cpuUsage();
const start = performance.timeOrigin + performance.now();
const outcome = restoreThroughAgent(socketPath, manifest, { deadlineMs: 120_000 });
const end = performance.timeOrigin + performance.now();
const cpu = process.cpuUsage(cpuBefore);
const live = outcome.endpoints.filter(
  (e) => e.result.status === 'live' && e.fd !== undefined,
).length;
for (const e of outcome.endpoints) if (e.fd !== undefined) close(e.fd);
const failed = outcome.endpoints.find((e) => e.result.status !== 'live');
console.log(
  JSON.stringify({
    start,
    end,
    live,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    failed: failed?.result.message ?? outcome.done.message ?? null,
  }),
);
