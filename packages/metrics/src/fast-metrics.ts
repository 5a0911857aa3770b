/**
 * Counters, histograms and a gauge for the per-request hot path, registered
 * on a prom-client `Registry` like any prom-client metric (the registry
 * renders them; `registry.metrics()` and `getMetricsAsJSON()` see no
 * difference).
 *
 * Why not prom-client's own: every `inc(labels)` / `observe(labels, v)`
 * there validates the label names, rebuilds a key from the label object and
 * scans the buckets, about 1-2 us each; a request records a dozen of them.
 * Here a caller takes a series once per label combination (`series(...)`,
 * cached) and then `inc` / `observe` are a few array operations. Label
 * values must already be bounded (see `LabelPolicy`); the cache is keyed by
 * them.
 */
import type { Registry } from "prom-client";

type Values = { labels: Record<string, string | number>; value: number; metricName?: string }[];

/** What prom-client's Registry reads from a metric. */
interface RegisteredMetric {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  aggregator: "sum";
  get(): Promise<{ name: string; help: string; type: string; values: Values; aggregator: "sum" }>;
  reset(): void;
}

export interface FastMetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registers: Registry[];
  /** Called before the metric is read (as prom-client's `collect`): applies records still pending in a {@link RecordBatch}. */
  collect?: () => void;
}

const SEPARATOR = "\u0001";

/** One sample per series, for metrics whose series hold a single value (counters, gauges). */
function valueSamples(all: Iterable<{ labels: Record<string, string>; value: number }>): Values {
  return Array.from(all, (series) => ({ labels: series.labels, value: series.value }));
}

abstract class LabelledMetric<L extends string, S extends { labels: Record<string, string> }> implements RegisteredMetric {
  readonly name: string;
  readonly help: string;
  abstract readonly type: "counter" | "gauge" | "histogram";
  readonly aggregator = "sum" as const;
  readonly labelNames: readonly L[];
  protected readonly all = new Map<string, S>();
  readonly #collect: (() => void) | undefined;

  constructor(options: FastMetricOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    this.#collect = options.collect;
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  protected abstract create(labels: Record<string, string>): S;

  /** The series of these label values, in `labelNames` order (made on first use, then cached). */
  series(...values: string[]): S {
    const key = values.length === 1 ? values[0]! : values.join(SEPARATOR);
    let series = this.all.get(key);
    if (series === undefined) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name} takes ${this.labelNames.length} label values, got ${values.length}`);
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, index) => (labels[name] = values[index]!));
      series = this.create(labels);
      this.all.set(key, series);
    }
    return series;
  }

  /** The series of a label object (slower than {@link series}; for tests and occasional use). */
  protected seriesOf(labels: Partial<Record<L, string>> = {}): S {
    return this.series(...this.labelNames.map((name) => String(labels[name] ?? "")));
  }

  reset(): void {
    this.all.clear();
  }

  async get(): Promise<{ name: string; help: string; type: string; values: Values; aggregator: "sum" }> {
    this.#collect?.();
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }

  /** The samples of every series, as prom-client's `get()` lists them. */
  protected abstract values(): Values;
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Record<string, string>) {}
  inc(amount = 1): void {
    this.value += amount;
  }
}

export class FastCounter<L extends string = string> extends LabelledMetric<L, CounterSeries> {
  readonly type = "counter" as const;

  protected create(labels: Record<string, string>): CounterSeries {
    return new CounterSeries(labels);
  }

  inc(labels?: Partial<Record<L, string>>, amount = 1): void {
    this.seriesOf(labels).inc(amount);
  }

  protected values(): Values {
    return valueSamples(this.all.values());
  }
}

export class GaugeSeries {
  value = 0;
  constructor(readonly labels: Record<string, string>) {}
  inc(amount = 1): void {
    this.value += amount;
  }
  dec(amount = 1): void {
    this.value -= amount;
  }
  set(value: number): void {
    this.value = value;
  }
}

export class FastGauge<L extends string = string> extends LabelledMetric<L, GaugeSeries> {
  readonly type = "gauge" as const;

  constructor(options: FastMetricOptions<L>) {
    super(options);
    // An unlabelled gauge always reports, 0 included.
    if (this.labelNames.length === 0) this.series();
  }

  protected create(labels: Record<string, string>): GaugeSeries {
    return new GaugeSeries(labels);
  }

  override reset(): void {
    for (const series of this.all.values()) series.set(0);
  }

  protected values(): Values {
    return valueSamples(this.all.values());
  }
}

export class HistogramSeries {
  sum = 0;
  count = 0;
  /** Observations per bucket (not cumulative); the last is +Inf. */
  readonly counts: Float64Array;
  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && value > bounds[index]!) index++;
    this.counts[index]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

export class FastHistogram<L extends string = string> extends LabelledMetric<L, HistogramSeries> {
  readonly type = "histogram" as const;
  readonly buckets: readonly number[];

  constructor(options: FastMetricOptions<L> & { buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  protected create(labels: Record<string, string>): HistogramSeries {
    return new HistogramSeries(labels, this.buckets);
  }

  observe(labels: Partial<Record<L, string>>, value: number): void {
    this.seriesOf(labels).observe(value);
  }

  protected values(): Values {
    const values: Values = [];
    for (const series of this.all.values()) {
      let cumulative = 0;
      for (let index = 0; index <= this.buckets.length; index++) {
        cumulative += series.counts[index]!;
        const le = index < this.buckets.length ? this.buckets[index]! : "+Inf";
        // `le` first, as prom-client writes it.
        values.push({ labels: { le, ...series.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return values;
  }
}

/**
 * Records made on a hot path and applied to their series later, in batches.
 * A finished request or job writes its references (series, raw label
 * values) and numbers into preallocated arrays, a few stores; the records
 * are applied when the batch is full and before any of their metrics is
 * read (the metrics' `collect`), so a scrape never misses one. Applied one
 * at a time, at the end of each request, the same lookups and histogram
 * updates ran cold (their code and series out of the CPU's caches, their
 * branches unpredicted); applied many at a time, they run warm.
 *
 * References stay in `refs` until their slot is reused: `apply` clears any
 * that a client could make large (a raw model name).
 */
export class RecordBatch {
  /** `refWidth` references per record: record `i`'s `k`-th is `refs[i * refWidth + k]`. */
  readonly refs: unknown[];
  /** `numberWidth` numbers per record, the same way. */
  readonly numbers: Float64Array;
  readonly #capacity: number;
  readonly #apply: (batch: RecordBatch, count: number) => void;
  #count = 0;

  /** `apply(batch, count)` applies records 0 to `count - 1`. */
  constructor(options: { capacity: number; refWidth: number; numberWidth: number; apply: (batch: RecordBatch, count: number) => void }) {
    this.#capacity = options.capacity;
    // Made packed (no holes), so reading a slot needs no hole check.
    this.refs = Array.from({ length: options.capacity * options.refWidth }, () => undefined);
    this.numbers = new Float64Array(options.capacity * options.numberWidth);
    this.#apply = options.apply;
  }

  /** The index of a new record, for the caller to fill; a full batch is applied first. */
  add(): number {
    if (this.#count === this.#capacity) this.flush();
    return this.#count++;
  }

  /** Applies the pending records now. */
  flush(): void {
    const count = this.#count;
    if (count === 0) return;
    this.#count = 0;
    this.#apply(this, count);
  }
}

/**
 * A cache keyed by two to four values (strings, numbers, undefined) without
 * building a joined key (no allocation per lookup): nested maps, one level
 * per key part. `find*` returns undefined on a miss and `set*` stores: no
 * `make` callback, so a hot path allocates nothing once its entry exists.
 */
export class KeyedCache<T> {
  readonly #root = new Map<unknown, any>();

  #level(map: Map<unknown, any>, key: unknown): Map<unknown, any> {
    let next = map.get(key);
    if (next === undefined) map.set(key, (next = new Map()));
    return next;
  }

  find2(a: unknown, b: unknown): T | undefined {
    return this.#root.get(a)?.get(b);
  }

  find3(a: unknown, b: unknown, c: unknown): T | undefined {
    return this.#root.get(a)?.get(b)?.get(c);
  }

  find4(a: unknown, b: unknown, c: unknown, d: unknown): T | undefined {
    return this.#root.get(a)?.get(b)?.get(c)?.get(d);
  }

  set2(a: unknown, b: unknown, value: T): T {
    this.#level(this.#root, a).set(b, value);
    return value;
  }

  set3(a: unknown, b: unknown, c: unknown, value: T): T {
    this.#level(this.#level(this.#root, a), b).set(c, value);
    return value;
  }

  set4(a: unknown, b: unknown, c: unknown, d: unknown, value: T): T {
    this.#level(this.#level(this.#level(this.#root, a), b), c).set(d, value);
    return value;
  }
}
