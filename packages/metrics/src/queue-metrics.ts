/**
 * Queue metrics, recorded by whichever transport runs the jobs (in-process or
 * BullMQ) through {@link QueueRecorder}, which implements the `QueueMetrics`
 * interface of `@switchboard/queue` (structurally; this package does not
 * import the queue).
 */
import { Gauge, type Registry } from "prom-client";
import { QUEUE_BUCKETS } from "./buckets.js";
import { FastCounter, FastHistogram, RecordBatch, type CounterSeries, type HistogramSeries } from "./fast-metrics.js";
import { KnownValues, NONE } from "./labels.js";
import type { LabelPolicy } from "./label-policy.js";


/** How a job left its queue. `rejected`: refused before it started (the line was full). */
export type QueueJobOutcome = "completed" | "failed" | "cancelled" | "rejected";

/** Jobs of one queue in one state, read at scrape time. */
export interface QueueDepthSample {
  queue: string;
  /** `waiting`, `active`, `delayed`, `prioritized`, `waiting-children`, `paused`; BullMQ's names. */
  state: string;
  count: number;
}

/** Something that can say how deep its queues are now. */
export type QueueDepthSource = () => readonly QueueDepthSample[] | Promise<readonly QueueDepthSample[]>;

const STATES = new KnownValues(["waiting", "active", "delayed", "prioritized", "waiting-children", "paused"]);
const OUTCOMES = ["completed", "failed", "cancelled", "rejected"] as const;

/** Jobs started and finished recorded before they are applied to their series (see {@link RecordBatch}). */
const BATCH = 256;
/** A record: the queue's name and the job's outcome (none for a job that started); its wait or run time. */
const RECORD_REFS = 2;

/** The series of one queue. */
interface QueueSeries {
  wait: HistogramSeries;
  run: Record<Exclude<QueueJobOutcome, "rejected">, HistogramSeries>;
  jobs: Record<QueueJobOutcome, CounterSeries>;
}

export class QueueRecorder {
  readonly depth: Gauge<"queue" | "state">;
  readonly waitTime: FastHistogram<"queue">;
  readonly runTime: FastHistogram<"queue" | "outcome">;
  readonly jobs: FastCounter<"queue" | "outcome">;
  readonly retried: FastCounter<"queue">;
  readonly stalled: FastCounter<"queue">;
  readonly #labels: LabelPolicy;
  readonly #sources = new Set<QueueDepthSource>();
  readonly #series = new Map<string, QueueSeries>();
  readonly #records = new RecordBatch({ capacity: BATCH, refWidth: RECORD_REFS, numberWidth: 1, apply: (batch, count) => this.#apply(batch, count) });

  constructor(registry: Registry, labels: LabelPolicy) {
    this.#labels = labels;
    const registers = [registry];
    // Applies the jobs still pending before their metrics are read.
    const collect = () => this.#records.flush();
    const sources = this.#sources;
    this.depth = new Gauge({
      name: "switchboard_queue_depth",
      help: "Jobs in a queue by state (waiting, active, ...), read when scraped.",
      labelNames: ["queue", "state"],
      registers,
      async collect() {
        this.reset();
        const totals = new Map<string, { queue: string; state: string; count: number }>();
        for (const source of sources) {
          let samples: readonly QueueDepthSample[];
          try {
            samples = await source();
          } catch {
            // A transport that cannot answer now (Redis down) reports nothing rather than failing the scrape.
            continue;
          }
          for (const sample of samples) {
            const queue = labels.queue(sample.queue);
            const state = STATES.fold(sample.state);
            const key = `${queue}\u0000${state}`;
            const total = totals.get(key);
            if (total) total.count += sample.count;
            else totals.set(key, { queue, state, count: sample.count });
          }
        }
        for (const total of totals.values()) this.set({ queue: total.queue, state: total.state }, total.count);
      },
    });
    this.waitTime = new FastHistogram({
      name: "switchboard_queue_wait_seconds",
      help: "Time a job waited in its queue before a worker (or a free sequence) took it.",
      labelNames: ["queue"],
      buckets: QUEUE_BUCKETS,
      registers,
      collect,
    });
    this.runTime = new FastHistogram({
      name: "switchboard_queue_run_seconds",
      help: "Time from a worker taking a job to the job's end, by outcome.",
      labelNames: ["queue", "outcome"],
      buckets: QUEUE_BUCKETS,
      registers,
      collect,
    });
    this.jobs = new FastCounter({
      name: "switchboard_queue_jobs_total",
      help: "Jobs that left a queue, by outcome: completed, failed, cancelled, rejected (refused before starting).",
      labelNames: ["queue", "outcome"],
      registers,
      collect,
    });
    this.retried = new FastCounter({
      name: "switchboard_queue_jobs_retried_total",
      help: "Jobs run again after a failed or lost attempt.",
      labelNames: ["queue"],
      registers,
    });
    this.stalled = new FastCounter({
      name: "switchboard_queue_jobs_stalled_total",
      help: "Jobs whose worker stopped renewing their lock (BullMQ's stalled jobs).",
      labelNames: ["queue"],
      registers,
    });
  }

  /** A worker took a job that waited `waitSeconds`. */
  jobStarted(queue: string, waitSeconds: number): void {
    this.#record(queue, undefined, waitSeconds);
  }

  /** A job left its queue. `runSeconds` is ignored for `rejected` jobs, which never ran. */
  jobFinished(queue: string, outcome: QueueJobOutcome, runSeconds: number): void {
    this.#record(queue, outcome, runSeconds);
  }

  #record(queue: string, outcome: QueueJobOutcome | undefined, seconds: number): void {
    const batch = this.#records;
    const at = batch.add();
    batch.refs[at * RECORD_REFS] = queue;
    batch.refs[at * RECORD_REFS + 1] = outcome;
    batch.numbers[at] = seconds;
  }

  #apply(batch: RecordBatch, count: number): void {
    const { refs, numbers } = batch;
    let queue: string | undefined;
    let series: QueueSeries | undefined;
    for (let index = 0; index < count; index++) {
      // Records come in runs of one queue: its series is looked up once per run.
      if (series === undefined || refs[index * RECORD_REFS] !== queue) series = this.#seriesOf((queue = refs[index * RECORD_REFS] as string));
      const outcome = refs[index * RECORD_REFS + 1] as QueueJobOutcome | undefined;
      const seconds = numbers[index]!;
      if (outcome === undefined) series.wait.observe(seconds);
      else if (outcome === "rejected") series.jobs.rejected.inc();
      else if (series.jobs[outcome] === undefined) {
        // Not an outcome of this recorder: counted as failed.
        series.jobs.failed.inc();
        series.run.failed.observe(seconds);
      } else {
        series.jobs[outcome].inc();
        series.run[outcome].observe(seconds);
      }
    }
  }

  jobRetried(queue: string): void {
    this.retried.series(this.#labels.queue(queue)).inc();
  }

  jobStalled(queue: string): void {
    this.stalled.series(this.#labels.queue(queue)).inc();
  }

  queueServed(queue: string): void {
    const label = this.#labels.queue(queue);
    this.retried.series(label);
    this.stalled.series(label);
  }

  #seriesOf(queue: string): QueueSeries {
    // Keyed by label, so a known queue's name finds its series in one lookup; `none` is keyed
    // by "" (the name that folds to it), so a queue named "none" still folds to `other`.
    const known = this.#series.get(queue);
    if (known !== undefined) return known;
    const label = this.#labels.queue(queue);
    const key = label === NONE ? "" : label;
    let series = this.#series.get(key);
    if (series === undefined) {
      const byOutcome = <T>(outcomes: readonly QueueJobOutcome[], make: (outcome: QueueJobOutcome) => T) => Object.fromEntries(outcomes.map((outcome) => [outcome, make(outcome)])) as Record<QueueJobOutcome, T>;
      series = {
        wait: this.waitTime.series(label),
        // Rejected jobs never ran: no run-time series for them.
        run: byOutcome(["completed", "failed", "cancelled"], (outcome) => this.runTime.series(label, outcome)),
        jobs: byOutcome(OUTCOMES, (outcome) => this.jobs.series(label, outcome)),
      };
      this.#series.set(key, series);
    }
    return series;
  }

  /** Reads `source` at every scrape until the returned function is called. */
  watchDepth(source: QueueDepthSource): () => void {
    this.#sources.add(source);
    return () => this.#sources.delete(source);
  }
}
