import { expect, test } from 'bun:test';

import type { Io } from '../../src/cli/io.ts';
import { ProgressBar } from '../../src/cli/progress.ts';

function fakeIo(tty: boolean): Io & { written: string[] } {
  const written: string[] = [];
  return {
    written,
    out: () => {},
    err: () => {},
    errRaw: (text) => written.push(text),
    stdoutTty: tty,
    stderrTty: tty,
    columns: 80,
  };
}

test('draws nothing for an operation that finishes within a moment', () => {
  let now = 0;
  const io = fakeIo(true);
  const bar = new ProgressBar(io, 'restore r1', () => now);
  now = 100;
  bar.update(1, 4, 'endpoints');
  bar.clear();
  expect(io.written).toEqual([]);
});

test('draws a bar on a terminal once it takes longer, and clears it', () => {
  let now = 0;
  const io = fakeIo(true);
  const bar = new ProgressBar(io, 'restore r1', () => now);
  now = 1500;
  bar.update(2, 4, 'endpoints');
  expect(io.written).toEqual([
    `\r\x1b[Krestore r1 [${'#'.repeat(15)}${'-'.repeat(15)}] 2/4 endpoints 1.5s`,
  ]);
  bar.clear();
  expect(io.written.at(-1)).toBe('\r\x1b[K');
});

test('draws nothing when stderr is not a terminal', () => {
  let now = 0;
  const io = fakeIo(false);
  const bar = new ProgressBar(io, 'restore r1', () => now);
  now = 5000;
  bar.update(1, 2);
  expect(io.written).toEqual([]);
});
