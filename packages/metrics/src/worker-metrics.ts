/**
 * Worker metrics: what every backend does with its jobs (measured around the
 * backend, so any engine gets them), what the llama engine holds (model load
 * time, sequences, context tokens), and how the Hugging Face upstream behaves
 * (latency, errors, retries, circuits). Engines never import prom-client: they
 * call the narrow recorder interfaces they define (`LlamaEngineMetrics`,
 * `HfUpstreamMetrics`), which {@link LlamaRecorder} and {@link HfRecorder}
 * implement.
 */
import { Gauge, type Registry } from "prom-client";
import { type Backend, type Job, type JobContext, type JobEvent } from "@switchboard/protocol";
import { DECODE_RATE_BUCKETS, GENAI_DURATION_BUCKETS, MODEL_LOAD_BUCKETS, UPSTREAM_BUCKETS } from "./buckets.js";
import { FastCounter, FastHistogram, KeyedCache, type CounterSeries, type HistogramSeries } from "./fast-metrics.js";
import { GenerationTimer, tapEvents, type JobObserver } from "./generation-timer.js";
import { KnownValues } from "./labels.js";
import type { LabelPolicy } from "./label-policy.js";

/** The series the jobs of one model, backend and kind record into at a worker. */
interface WorkerSeries {
  completed: HistogramSeries;
  failed: HistogramSeries;
  cancelled: HistogramSeries;
  input: CounterSeries;
  output: CounterSeries;
  decode: HistogramSeries;
}

/** One job, watched where it runs. */
class WorkerJobObservation extends GenerationTimer implements JobObserver {
  readonly #series: WorkerSeries;
  #ended = false;

  constructor(series: WorkerSeries) {
    super();
    this.#series = series;
  }

  end(finished: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    // A job refused before it started (model loading, line full) did no work.
    if (!this.accepted) return;
    const series = this.#series;
    series[this.outcome(finished)].observe((this.now() - this.startedAt) / 1000);
    if (this.promptTokens > 0) series.input.inc(this.promptTokens);
    if (this.completionTokens > 0) series.output.inc(this.completionTokens);
    // No decode speed for tokens that came all at once.
    const perToken = this.timePerOutputToken();
    if (perToken !== undefined && perToken > 0) series.decode.observe(1 / perToken);
  }
}

/** One job as an engine reports it when it ends (the llama engine measures its own). */
export interface FinishedJob {
  model: string;
  kind: string;
  outcome: "completed" | "failed" | "cancelled";
  promptTokens: number;
  completionTokens: number;
  seconds: number;
  /** From the first output to the last `finish`; absent without output. */
  decodeSeconds?: number;
}

export class WorkerRecorder {
  readonly jobDuration: FastHistogram<"model" | "backend" | "kind" | "outcome">;
  readonly tokens: FastCounter<"model" | "backend" | "type">;
  readonly decodeRate: FastHistogram<"model" | "backend">;
  readonly #labels: LabelPolicy;
  readonly #series = new KeyedCache<WorkerSeries>();

  constructor(registry: Registry, labels: LabelPolicy) {
    this.#labels = labels;
    const registers = [registry];
    this.jobDuration = new FastHistogram({
      name: "switchboard_worker_job_duration_seconds",
      help: "Time a backend spent on a job, from the call to its last event, by model, backend, job kind and outcome.",
      labelNames: ["model", "backend", "kind", "outcome"],
      buckets: GENAI_DURATION_BUCKETS,
      registers,
    });
    this.tokens = new FastCounter({
      name: "switchboard_worker_tokens_total",
      help: "Tokens a backend read (input) and generated (output), by model and backend; rate() of output is decode tokens/s.",
      labelNames: ["model", "backend", "type"],
      registers,
    });
    this.decodeRate = new FastHistogram({
      name: "switchboard_worker_decode_tokens_per_second",
      help: "Decode speed of one job: output tokens after the first over the time from the first output to the last, tokens per second.",
      labelNames: ["model", "backend"],
      buckets: DECODE_RATE_BUCKETS,
      registers,
    });
  }

  /**
   * Records one finished job from an engine that measured it itself (the
   * llama engine, once per job): duration, tokens, and decode speed from the
   * output tokens after the first over `decodeSeconds`.
   */
  recordJob(info: FinishedJob & { backend: string }): void {
    const series = this.#seriesOf(info, info.backend);
    const outcome = info.outcome === "completed" || info.outcome === "cancelled" ? info.outcome : "failed";
    series[outcome].observe(info.seconds);
    if (info.promptTokens > 0) series.input.inc(info.promptTokens);
    if (info.completionTokens > 0) series.output.inc(info.completionTokens);
    if (info.completionTokens > 1 && info.decodeSeconds !== undefined && info.decodeSeconds > 0) series.decode.observe((info.completionTokens - 1) / info.decodeSeconds);
  }

  /** Starts watching a job `backend` runs; call `see` for each event and `end` once. */
  startJob(job: Pick<Job, "model" | "kind">, backend: string): JobObserver {
    return new WorkerJobObservation(this.#seriesOf(job, backend));
  }

  /**
   * The same backend, measured: every job's duration, outcome, tokens and
   * decode speed. The wrapper forwards everything else unchanged. For
   * transports that read the events anyway, {@link startJob} costs less.
   */
  instrument(backend: Backend): Backend {
    const recorder = this;
    return {
      get name() {
        return backend.name;
      },
      models: () => backend.models(),
      modelStates: () => backend.modelStates(),
      close: () => backend.close(),
      run(job: Job, context: JobContext): AsyncIterable<JobEvent> {
        return {
          [Symbol.asyncIterator]: () => {
            const observation = recorder.startJob(job, backend.name);
            return tapEvents(
              backend.run(job, context)[Symbol.asyncIterator](),
              (event) => observation.see(event),
              (how) => observation.end(how === "done"),
            );
          },
        };
      },
    };
  }

  #seriesOf(job: { model: string; kind: string }, backendName: string): WorkerSeries {
    const model = this.#labels.model(job.model);
    const backend = this.#labels.backend(backendName);
    const kind = this.#labels.kind(job.kind);
    return this.#series.find3(model, backend, kind) ?? this.#series.set3(model, backend, kind, this.#newSeries(model, backend, kind));
  }

  #newSeries(model: string, backend: string, kind: string): WorkerSeries {
    return {
      completed: this.jobDuration.series(model, backend, kind, "completed"),
      failed: this.jobDuration.series(model, backend, kind, "failed"),
      cancelled: this.jobDuration.series(model, backend, kind, "cancelled"),
      input: this.tokens.series(model, backend, "input"),
      output: this.tokens.series(model, backend, "output"),
      decode: this.decodeRate.series(model, backend),
    };
  }
}

/** One loaded llama model's sequences and context, as `LlamaBackend.queueStates()` reports them. */
export interface LlamaModelLoad {
  id: string;
  /** Sequences the model has. */
  sequences: number;
  /** Sequences free now. */
  free: number;
  /** Jobs waiting for a sequence. */
  waiting: number;
  /** Tokens held in the model's sequences now (running jobs', and what idle sequences keep for reuse). */
  contextTokens?: number;
  /** The part of `contextTokens` idle sequences keep for a later prompt that starts the same way. */
  cachedContextTokens?: number;
  /** Tokens all its sequences can hold. */
  contextCapacity?: number;
}

export type LlamaLoadSource = () => readonly LlamaModelLoad[];

export class LlamaRecorder {
  readonly loadTime: FastHistogram<"model" | "outcome">;
  readonly sequences: Gauge<"model" | "state">;
  readonly waiting: Gauge<"model">;
  readonly contextUsed: Gauge<"model">;
  readonly contextCached: Gauge<"model">;
  readonly promptTokensReused: FastCounter<"model">;
  readonly contextCapacity: Gauge<"model">;
  readonly #labels: LabelPolicy;
  readonly #worker: WorkerRecorder;
  readonly #sources = new Set<LlamaLoadSource>();

  /** @param worker where {@link jobFinished} records the engine's jobs (backend `llama`). */
  constructor(registry: Registry, labels: LabelPolicy, worker: WorkerRecorder) {
    this.#labels = labels;
    this.#worker = worker;
    const registers = [registry];
    const read = () => {
      const byModel = new Map<string, Required<Omit<LlamaModelLoad, "id">>>();
      for (const source of this.#sources) {
        for (const load of source()) {
          const model = labels.model(load.id);
          const total = byModel.get(model) ?? { sequences: 0, free: 0, waiting: 0, contextTokens: 0, cachedContextTokens: 0, contextCapacity: 0 };
          total.sequences += load.sequences;
          total.free += load.free;
          total.waiting += load.waiting;
          total.contextTokens += load.contextTokens ?? 0;
          total.cachedContextTokens += load.cachedContextTokens ?? 0;
          total.contextCapacity += load.contextCapacity ?? 0;
          byModel.set(model, total);
        }
      }
      return byModel;
    };
    this.loadTime = new FastHistogram({
      name: "switchboard_llama_model_load_seconds",
      help: "Time to load a GGUF model and create its contexts (after download), by outcome.",
      labelNames: ["model", "outcome"],
      buckets: MODEL_LOAD_BUCKETS,
      registers,
    });
    this.sequences = new Gauge({
      name: "switchboard_llama_sequences",
      help: "llama.cpp sequences of each loaded model by state: busy (running a job) or idle.",
      labelNames: ["model", "state"],
      registers,
      collect() {
        this.reset();
        for (const [model, total] of read()) {
          this.set({ model, state: "busy" }, total.sequences - total.free);
          this.set({ model, state: "idle" }, total.free);
        }
      },
    });
    /** A gauge per model, set from the sum of every source's `field` at scrape time. */
    const perModel = (name: string, help: string, field: "waiting" | "contextTokens" | "cachedContextTokens" | "contextCapacity") =>
      new Gauge({
        name,
        help,
        labelNames: ["model"],
        registers,
        collect() {
          this.reset();
          for (const [model, total] of read()) this.set({ model }, total[field]);
        },
      });
    this.waiting = perModel("switchboard_llama_waiting_jobs", "Jobs waiting for a free sequence of a model.", "waiting");
    this.contextUsed = perModel(
      "switchboard_llama_context_used_tokens",
      "Tokens held in a model's sequences now: prompts and outputs of the jobs running, and what idle sequences keep for reuse.",
      "contextTokens",
    );
    this.contextCached = perModel(
      "switchboard_llama_context_cached_tokens",
      "The part of the context tokens held by idle sequences, kept so that a prompt starting the same way is not evaluated again.",
      "cachedContextTokens",
    );
    this.contextCapacity = perModel("switchboard_llama_context_capacity_tokens", "Tokens all of a model's sequences can hold.", "contextCapacity");
    this.promptTokensReused = new FastCounter({
      name: "switchboard_llama_prompt_tokens_reused_total",
      help: "Prompt tokens a job found already evaluated on its sequence (a shared start with an earlier job's prompt), so not evaluated again.",
      labelNames: ["model"],
      registers,
    });
  }

  /** Implements `LlamaEngineMetrics.modelLoaded`. */
  modelLoaded(info: { model: string; seconds: number; outcome: "ok" | "failed" }): void {
    this.loadTime.series(this.#labels.model(info.model), info.outcome === "ok" ? "ok" : "failed").observe(info.seconds);
  }

  /** Implements `LlamaEngineMetrics.jobFinished`: the worker's job metrics, measured by the engine. */
  jobFinished(info: FinishedJob & { reusedPromptTokens?: number }): void {
    this.#worker.recordJob({ ...info, backend: "llama" });
    if (info.reusedPromptTokens) this.promptTokensReused.series(this.#labels.model(info.model)).inc(info.reusedPromptTokens);
  }

  /** Reads a backend's sequences at every scrape (pass `() => backend.queueStates()`). */
  watch(source: LlamaLoadSource): () => void {
    this.#sources.add(source);
    return () => this.#sources.delete(source);
  }
}

/** The circuit of one remote model, as `CircuitBreaker.state()` reports it. */
export interface CircuitSample {
  model: string;
  state: string;
}

export type CircuitSource = () => readonly CircuitSample[];

const CIRCUIT_STATES = ["closed", "open", "half-open"] as const;
const UPSTREAM_ERROR_CODES = new KnownValues([
  "upstream_error",
  "upstream_bad_response",
  "upstream_timeout",
  "upstream_rate_limited",
  "upstream_rejected_input",
  "model_unavailable",
]);

export class HfRecorder {
  readonly latency: FastHistogram<"model" | "provider" | "outcome">;
  readonly errors: FastCounter<"model" | "provider" | "code">;
  readonly retries: FastCounter<"model" | "provider">;
  readonly circuit: Gauge<"model" | "state">;
  readonly #labels: LabelPolicy;
  readonly #sources = new Set<CircuitSource>();

  constructor(registry: Registry, labels: LabelPolicy) {
    this.#labels = labels;
    const registers = [registry];
    const sources = this.#sources;
    this.latency = new FastHistogram({
      name: "switchboard_hf_upstream_request_duration_seconds",
      help: "Time of one call to a Hugging Face upstream, retries and backoff included (streams: until the response headers), by model, provider and outcome (ok, error).",
      labelNames: ["model", "provider", "outcome"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });
    this.errors = new FastCounter({
      name: "switchboard_hf_upstream_errors_total",
      help: "Failed upstream calls by model, provider and error code (upstream_error, upstream_timeout, upstream_bad_response, upstream_rate_limited, upstream_rejected_input, model_unavailable).",
      labelNames: ["model", "provider", "code"],
      registers,
    });
    this.retries = new FastCounter({
      name: "switchboard_hf_upstream_retries_total",
      help: "Upstream attempts retried after a 5xx, 408, 429 or network error.",
      labelNames: ["model", "provider"],
      registers,
    });
    this.circuit = new Gauge({
      name: "switchboard_hf_circuit_state",
      help: "Circuit breaker of each remote model: 1 for its current state (closed, open, half-open), 0 for the others.",
      labelNames: ["model", "state"],
      registers,
      collect() {
        this.reset();
        const current = new Map<string, string>();
        for (const source of sources) for (const sample of source()) current.set(labels.model(sample.model), sample.state);
        for (const [model, state] of current) for (const candidate of CIRCUIT_STATES) this.set({ model, state: candidate }, candidate === state ? 1 : 0);
      },
    });
  }

  /** Implements `HfUpstreamMetrics.upstreamCall`: `error` is the GatewayError code of a failed call. */
  upstreamCall(info: { model: string; provider?: string; seconds: number; error?: string }): void {
    const model = this.#labels.model(info.model);
    const provider = this.#labels.provider(info.model, info.provider);
    this.latency.series(model, provider, info.error === undefined ? "ok" : "error").observe(info.seconds);
    if (info.error !== undefined) this.errors.series(model, provider, UPSTREAM_ERROR_CODES.fold(info.error)).inc();
  }

  /** Implements `HfUpstreamMetrics.upstreamRetry`. */
  upstreamRetry(info: { model: string; provider?: string }): void {
    this.retries.series(this.#labels.model(info.model), this.#labels.provider(info.model, info.provider)).inc();
  }

  /** Reads circuits at every scrape, e.g. `() => engine.models().map((m) => ({ model: m.id, state: engine.breaker.state(m.id) }))`. */
  watchCircuits(source: CircuitSource): () => void {
    this.#sources.add(source);
    return () => this.#sources.delete(source);
  }
}
