/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
 * text exposition format 0.0.4. Names follow Prometheus conventions: counters end in
 * `_total`, durations are in seconds and end in `_seconds`.
 *
 * Metric and label names are fixed by the code that registers them, so a bad name or a wrong
 * label set is a programming error and throws at once (an assertion, not a RewireError).
 */
import { strict as assert } from 'node:assert';

/** The content type of `Registry.text()`. */
export const exposition = 'text/plain; version=0.0.4; charset=utf-8';

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The label values of one series, by label name. */
export type LabelValues<L extends string> = Record<L, string>;

/** Arguments of `inc`, `set` and `observe`: the labels first when the metric has any. */
type WithLabels<L extends string, Rest extends unknown[]> = [L] extends [never]
  ? Rest
  : [labels: LabelValues<L>, ...Rest];

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

abstract class Metric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { labels: string[]; value: S }>();

  constructor(options: MetricOptions<L>) {
    assert(metricName.test(options.name), `bad metric name '${options.name}'`);
    for (const l of options.labelNames ?? []) {
      assert(labelName.test(l) && !l.startsWith('__') && l !== 'le', `bad label name '${l}'`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  abstract readonly type: string;
  protected abstract initial(): S;
  protected abstract lines(labels: string[], value: S): string[];

  /** The series for `labels`, made on first use. */
  protected at(labels: LabelValues<L> | undefined): { labels: string[]; value: S } {
    const values = this.labelNames.map((n) => labels?.[n]);
    assert(
      values.every((v) => typeof v === 'string') &&
        Object.keys(labels ?? {}).length === this.labelNames.length,
      `metric '${this.name}' takes labels {${this.labelNames.join(', ')}}`,
    );
    const key = values.join('\u0000');
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { labels: values as string[], value: this.initial() };
      this.series.set(key, entry);
    }
    return entry;
  }

  /** Drops every series (for gauges recomputed on each scrape). */
  reset(): void {
    this.series.clear();
  }

  /** The metric's block of the exposition: HELP, TYPE and one line per sample. */
  render(): string {
    const head = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    if (this.series.size === 0 && this.labelNames.length === 0) this.at(undefined);
    const body = [...this.series.values()].flatMap((s) => this.lines(s.labels, s.value));
    return [...head, ...body].join('\n');
  }

  protected sample(
    suffix: string,
    labels: string[],
    value: number,
    extra?: [string, string],
  ): string {
    const pairs = this.labelNames.map((n, i) => [n, labels[i]!] as [string, string]);
    if (extra !== undefined) pairs.push(extra);
    const text = pairs.map(([n, v]) => `${n}="${escapeLabel(v)}"`).join(',');
    return `${this.name}${suffix}${text === '' ? '' : `{${text}}`} ${formatValue(value)}`;
  }
}

/** A value that only goes up (restarts at 0 with the process). Its name ends in `_total`. */
export class Counter<L extends string = never> extends Metric<L, number> {
  readonly type = 'counter';

  constructor(options: MetricOptions<L>) {
    super(options);
    assert(options.name.endsWith('_total'), `counter '${options.name}' must end in _total`);
  }

  protected initial(): number {
    return 0;
  }

  protected lines(labels: string[], value: number): string[] {
    return [this.sample('', labels, value)];
  }

  /** Adds `by` (default 1, never negative). */
  inc(...args: WithLabels<L, [by?: number]>): void {
    const [labels, by] = split<L>(args);
    assert((by ?? 1) >= 0, `counter '${this.name}' cannot decrease`);
    this.at(labels).value += by ?? 1;
  }

  get(...args: WithLabels<L, []>): number {
    return this.at(split<L>(args)[0]).value;
  }
}

/** A value that goes up and down; `onCollect` recomputes it at each scrape. */
export class Gauge<L extends string = never> extends Metric<L, number> {
  readonly type = 'gauge';
  #collect: ((gauge: Gauge<L>) => void) | undefined;

  protected initial(): number {
    return 0;
  }

  protected lines(labels: string[], value: number): string[] {
    return [this.sample('', labels, value)];
  }

  set(...args: WithLabels<L, [value: number]>): void {
    const [labels, value] = split<L>(args);
    this.at(labels).value = value ?? 0;
  }

  inc(...args: WithLabels<L, [by?: number]>): void {
    const [labels, by] = split<L>(args);
    this.at(labels).value += by ?? 1;
  }

  dec(...args: WithLabels<L, [by?: number]>): void {
    const [labels, by] = split<L>(args);
    this.at(labels).value -= by ?? 1;
  }

  get(...args: WithLabels<L, []>): number {
    return this.at(split<L>(args)[0]).value;
  }

  /** Calls `fn` before each rendering, after dropping the old series; `fn` sets the values. */
  onCollect(fn: (gauge: Gauge<L>) => void): void {
    this.#collect = fn;
  }

  override render(): string {
    if (this.#collect !== undefined) {
      this.reset();
      this.#collect(this);
    }
    return super.render();
  }
}

interface Buckets {
  counts: number[];
  sum: number;
  count: number;
}

/** Prometheus's default buckets, in seconds. */
export const defaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, increasing; `+Inf` is added. */
  buckets?: readonly number[];
}

/** Observations counted into buckets, with their sum and count. */
export class Histogram<L extends string = never> extends Metric<L, Buckets> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions<L>) {
    super(options);
    const buckets = options.buckets ?? defaultBuckets;
    assert(
      buckets.length > 0 && buckets.every((b, i) => i === 0 || b > buckets[i - 1]!),
      'buckets must increase',
    );
    this.buckets = buckets.filter((b) => b !== Infinity);
  }

  protected initial(): Buckets {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  protected lines(labels: string[], value: Buckets): string[] {
    const out = this.buckets.map((le, i) =>
      this.sample('_bucket', labels, value.counts[i]!, ['le', formatValue(le)]),
    );
    out.push(this.sample('_bucket', labels, value.count, ['le', '+Inf']));
    out.push(this.sample('_sum', labels, value.sum), this.sample('_count', labels, value.count));
    return out;
  }

  observe(...args: WithLabels<L, [value: number]>): void {
    const [labels, value] = split<L>(args);
    const entry = this.at(labels).value;
    this.buckets.forEach((le, i) => {
      if ((value ?? 0) <= le) entry.counts[i]! += 1;
    });
    entry.sum += value ?? 0;
    entry.count += 1;
  }

  /** Starts a timer; calling the result observes the seconds since, and returns them. */
  startTimer(...args: WithLabels<L, []>): () => number {
    const start = performance.now();
    return () => {
      const seconds = (performance.now() - start) / 1000;
      (this.observe as (...a: unknown[]) => void)(...args, seconds);
      return seconds;
    };
  }
}

function split<L extends string>(
  args: unknown[],
): [LabelValues<L> | undefined, number | undefined] {
  if (typeof args[0] === 'object' && args[0] !== null) {
    return [args[0] as LabelValues<L>, args[1] as number | undefined];
  }
  return [undefined, args[0] as number | undefined];
}

/** A set of metrics rendered together, in registration order. */
export class Registry {
  readonly #metrics = new Map<string, { render(): string }>();

  counter<L extends string = never>(options: MetricOptions<L>): Counter<L> {
    return this.add(new Counter<L>(options));
  }

  gauge<L extends string = never>(options: MetricOptions<L>): Gauge<L> {
    return this.add(new Gauge<L>(options));
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.add(new Histogram<L>(options));
  }

  private add<M extends { name: string; render(): string }>(metric: M): M {
    assert(!this.#metrics.has(metric.name), `metric '${metric.name}' is already registered`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /** The exposition text (format 0.0.4), ending in a newline. */
  text(): string {
    return `${[...this.#metrics.values()].map((m) => m.render()).join('\n')}\n`;
  }
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
