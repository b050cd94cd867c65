/** Plain text tables for terminals: a header row and left-aligned columns two spaces apart. */

export type Cell = string | number | boolean | undefined | null;

export interface Column<T> {
  header: string;
  value(row: T): Cell;
}

function cellText(cell: Cell): string {
  if (cell === undefined || cell === null || cell === '') return '-';
  return String(cell);
}

/** Renders `rows`; an empty list renders as `(none)` under the header. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((c) => cellText(c.value(row))));
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((r) => r[i]!.length)),
  );
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();

  const out = [line(columns.map((c) => c.header.toUpperCase()))];
  if (cells.length === 0) out.push('(none)');
  for (const row of cells) out.push(line(row));
  return `${out.join('\n')}\n`;
}

/** `key: value` lines with the keys aligned. */
export function renderFields(fields: readonly [string, Cell][]): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return `${fields.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${cellText(v)}`).join('\n')}\n`;
}
