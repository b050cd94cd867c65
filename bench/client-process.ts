/**
 * One restarting process for the restore benchmark: `bun bench/client-process.ts SOCKET
 * MANIFEST_JSON`. Restores through its agent, checks every endpoint is live with an fd,
 * and prints {start, end, live} (epoch milliseconds) as JSON.
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
const start = performance.timeOrigin + performance.now();
const outcome = restoreThroughAgent(socketPath, manifest, { deadlineMs: 120_000 });
const end = performance.timeOrigin + performance.now();
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
    failed: failed?.result.message ?? outcome.done.message ?? null,
  }),
);
