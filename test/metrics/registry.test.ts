import { expect, test } from 'bun:test';

import { createAgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { Registry } from '../../src/metrics/registry.ts';

test('renders counters with labels in exposition format 0.0.4', () => {
  const registry = new Registry();
  const restores = registry.counter({
    name: 'x_restores_total',
    help: 'Restores',
    labelNames: ['result'],
  });
  restores.inc({ result: 'done' });
  restores.inc({ result: 'done' }, 2);
  restores.inc({ result: 'failed' });

  expect(registry.text()).toBe(
    [
      '# HELP x_restores_total Restores',
      '# TYPE x_restores_total counter',
      'x_restores_total{result="done"} 3',
      'x_restores_total{result="failed"} 1',
      '',
    ].join('\n'),
  );
});

test('renders an unlabelled metric as 0 before any update', () => {
  const registry = new Registry();
  registry.gauge({ name: 'x_fds_held', help: 'Fds' });
  expect(registry.text()).toBe('# HELP x_fds_held Fds\n# TYPE x_fds_held gauge\nx_fds_held 0\n');
});

test('counts histogram observations into cumulative buckets with sum and count', () => {
  const registry = new Registry();
  const h = registry.histogram({ name: 'x_duration_seconds', help: 'D', buckets: [0.1, 1] });
  h.observe(0.05);
  h.observe(0.5);
  h.observe(3);

  expect(registry.text()).toBe(
    [
      '# HELP x_duration_seconds D',
      '# TYPE x_duration_seconds histogram',
      'x_duration_seconds_bucket{le="0.1"} 1',
      'x_duration_seconds_bucket{le="1"} 2',
      'x_duration_seconds_bucket{le="+Inf"} 3',
      'x_duration_seconds_sum 3.55',
      'x_duration_seconds_count 3',
      '',
    ].join('\n'),
  );
});

test('puts histogram labels before le', () => {
  const registry = new Registry();
  const h = registry.histogram({
    name: 'x_seconds',
    help: 'D',
    buckets: [1],
    labelNames: ['peer'],
  });
  h.observe({ peer: 'a' }, 0.5);
  expect(registry.text()).toContain('x_seconds_bucket{peer="a",le="1"} 1');
  expect(registry.text()).toContain('x_seconds_count{peer="a"} 1');
});

test('times with startTimer', () => {
  const registry = new Registry();
  const h = registry.histogram({ name: 'x_seconds', help: 'D' });
  const seconds = h.startTimer()();
  expect(seconds).toBeGreaterThanOrEqual(0);
  expect(registry.text()).toContain('x_seconds_count 1');
});

test('escapes label values and help text', () => {
  const registry = new Registry();
  const g = registry.gauge({ name: 'x_info', help: 'A \\ help\nline', labelNames: ['v'] });
  g.set({ v: 'a"b\\c\nd' }, 1);
  expect(registry.text()).toContain('# HELP x_info A \\\\ help\\nline');
  expect(registry.text()).toContain('x_info{v="a\\"b\\\\c\\nd"} 1');
});

test('formats special values', () => {
  const registry = new Registry();
  const g = registry.gauge({ name: 'x_g', help: 'G', labelNames: ['k'] });
  g.set({ k: 'inf' }, Infinity);
  g.set({ k: 'ninf' }, -Infinity);
  g.set({ k: 'nan' }, NaN);
  expect(registry.text()).toContain('x_g{k="inf"} +Inf\nx_g{k="ninf"} -Inf\nx_g{k="nan"} NaN');
});

test('recomputes a collected gauge at each rendering', () => {
  const registry = new Registry();
  const g = registry.gauge({ name: 'x_peers', help: 'P', labelNames: ['state'] });
  let n = 1;
  g.onCollect((gauge) => gauge.set({ state: 'reachable' }, n));
  expect(registry.text()).toContain('x_peers{state="reachable"} 1');
  n = 5;
  expect(registry.text()).toContain('x_peers{state="reachable"} 5');
});

test('refuses bad names, a counter without _total, wrong labels and a decreasing counter', () => {
  const registry = new Registry();
  expect(() => registry.gauge({ name: 'bad-name', help: 'x' })).toThrow(
    "bad metric name 'bad-name'",
  );
  expect(() => registry.counter({ name: 'x_count', help: 'x' })).toThrow('must end in _total');
  expect(() => registry.gauge({ name: 'x_l', help: 'x', labelNames: ['le'] })).toThrow(
    "bad label name 'le'",
  );
  const c = registry.counter({ name: 'x_total', help: 'x', labelNames: ['a'] });
  expect(() => (c.inc as (l: unknown) => void)({ b: '1' })).toThrow('takes labels {a}');
  expect(() => c.inc({ a: '1' }, -1)).toThrow('cannot decrease');
  expect(() => registry.counter({ name: 'x_total', help: 'x' })).toThrow('already registered');
});

test("the agent's metrics follow Prometheus naming and carry build info", () => {
  const metrics = createAgentMetrics('9.9.9', 'arm64');
  const text = metrics.registry.text();

  expect(text).toContain('rewire_build_info{version="9.9.9",arch="arm64"} 1');
  expect(text).toContain('rewire_restores_total{result="partial"} 0');
  expect(text).toContain('rewire_endpoints_total{result="dead"} 0');
  expect(text).toContain('# TYPE rewire_handshake_duration_seconds histogram');
  expect(text).toContain('# TYPE rewire_restore_duration_seconds histogram');
  expect(text).toContain('# TYPE rewire_peers gauge');
  expect(text).toContain('rewire_fds_held 0');
  for (const line of text.split('\n').filter((l) => l.startsWith('# TYPE'))) {
    const [, , name, type] = line.split(' ');
    expect(name).toMatch(/^rewire_[a-z_]+$/);
    if (type === 'counter') expect(name).toEndWith('_total');
  }
});
