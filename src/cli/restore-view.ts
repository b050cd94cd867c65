/** How restores are shown and what their outcome means as an exit code. */
import type { RestoreView } from '../agent/handle.ts';
import { ExitCode } from './exit-codes.ts';
import { renderFields, renderTable } from './table.ts';

/** 0 when every endpoint is live or dead as expected, 4 when some failed, 5 when none made it. */
export function restoreExitCode(view: RestoreView): number {
  const madeIt = view.counts.live + view.counts.dead;
  if (view.state === 'cancelled') return ExitCode.restoreFailed;
  if (view.state === 'failed') return madeIt > 0 ? ExitCode.partial : ExitCode.restoreFailed;
  if (view.state === 'done' && view.counts.failed > 0) return ExitCode.partial;
  return ExitCode.ok;
}

export function finishedCount(view: RestoreView): number {
  return view.counts.live + view.counts.dead + view.counts.failed;
}

/** The restore's fields and one row per endpoint. */
export function renderRestore(view: RestoreView): string {
  const { counts } = view;
  const fields = renderFields([
    ['restore', view.id],
    ['process', `${view.executable}[${view.pid}] ${view.process}`],
    ['state', view.state],
    [
      'endpoints',
      `${counts.live} live, ${counts.dead} dead, ${counts.failed} failed, ${counts.pending} pending`,
    ],
    ['started', view.startedAt],
    ['finished', view.finishedAt],
  ]);
  const table = renderTable(view.endpoints, [
    { header: 'endpoint', value: (e) => e.id },
    { header: 'role', value: (e) => e.role },
    { header: 'state', value: (e) => e.state },
    { header: 'how', value: (e) => e.how },
    { header: 'peer', value: (e) => e.peer },
    {
      header: 'error',
      value: (e) => (e.code === undefined ? undefined : `${e.code}: ${e.message ?? ''}`),
    },
  ]);
  return `${fields}\n${table}`;
}

/** One line per restore, for lists. */
export function renderRestoreList(views: readonly RestoreView[]): string {
  return renderTable(views, [
    { header: 'restore', value: (r) => r.id },
    { header: 'process', value: (r) => `${r.executable}[${r.pid}]` },
    { header: 'state', value: (r) => r.state },
    { header: 'live', value: (r) => r.counts.live },
    { header: 'dead', value: (r) => r.counts.dead },
    { header: 'failed', value: (r) => r.counts.failed },
    { header: 'pending', value: (r) => r.counts.pending },
    { header: 'started', value: (r) => r.startedAt },
  ]);
}
