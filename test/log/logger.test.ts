import { expect, test } from 'bun:test';

import { RewireError } from '../../ffi/errors.ts';
import { createLogger } from '../../src/log/logger.ts';

function capture(json: boolean, level: 'debug' | 'info' = 'info') {
  const lines: string[] = [];
  return { lines, log: createLogger({ json, level, write: (l) => lines.push(l) }) };
}

test('writes one JSON object per line with the event, level and fields', () => {
  const { lines, log } = capture(true);
  log.child({ node: 42n }).warn('endpoint.failed', {
    endpoint: '1:2:3:0#4',
    error: new RewireError('EPEER_GONE', 'gone'),
  });

  const record = JSON.parse(lines[0]!);
  expect(record).toMatchObject({
    level: 'warn',
    event: 'endpoint.failed',
    node: '42',
    endpoint: '1:2:3:0#4',
  });
  expect(record.error).toEqual({ code: 'EPEER_GONE', message: 'gone' });
  expect(Date.parse(record.time)).not.toBeNaN();
});

test('writes bigints at any depth as decimal strings, never throwing', () => {
  const { lines, log } = capture(true);
  log.info('placement.set', { placement: { version: 18446744073709551615n, nodes: [{ id: 1n }] } });
  expect(JSON.parse(lines[0]!).placement).toEqual({
    version: '18446744073709551615',
    nodes: [{ id: '1' }],
  });

  const text = capture(false);
  text.log.info('placement.set', { placement: { version: 7n } });
  expect(text.lines[0]).toMatch(/ INFO {2}placement\.set placement=\{"version":"7"\}$/);
});

test.skipIf(process.env.REWIRE_DEBUG === '1')('drops lines below the level', () => {
  const { lines, log } = capture(true, 'info');
  log.debug('noise');
  log.info('signal');
  expect(lines.map((l) => JSON.parse(l).event)).toEqual(['signal']);
});
