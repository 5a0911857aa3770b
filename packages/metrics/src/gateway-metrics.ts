/**
 * The gateway's metrics: HTTP traffic (OpenTelemetry `http.server.*`) and
 * the generative-AI view of the jobs behind it (`gen_ai.server.*`,
 * `gen_ai.client.token.usage`). Recorded through {@link GatewayRecorder},
 * whose methods take raw values and fold them into bounded labels. Series
 * are looked up once per label combination and cached, so a request costs a
 * few map lookups and additions (see `fast-metrics.ts`).
 */
import type { Registry } from "prom-client";
import { metricsNow, type JobEvent } from "@switchboard/protocol";
import { GENAI_DURATION_BUCKETS, HTTP_DURATION_BUCKETS, TPOT_BUCKETS, TTFT_BUCKETS } from "./buckets.js";
import { FastCounter, FastGauge, FastHistogram, KeyedCache, RecordBatch, type CounterSeries, type GaugeSeries, type HistogramSeries } from "./fast-metrics.js";
import { GenerationTimer, tapEvents, type JobObserver } from "./generation-timer.js";
import { CappedValues, foldMethod, foldStatus, UNMATCHED_ROUTE } from "./labels.js";
import type { LabelPolicy } from "./label-policy.js";

/** The label values of one HTTP request, bounded by construction. */
export type HttpRequestLabels = {
  /** Route template (`/v1/models/*`), never the raw URL; unknown routes share one value. */
  route: string;
  method: string;
  /** Status code as text; `499` when the client went away before the response ended. */
  status: string;
  /** Catalog id of the model the request named; `none` when it named none, `other` when unknown. */
  model: string;
};

/** Why the gateway refused a request, by status code. */
export const REJECTION_REASONS: Readonly<Record<number, string>> = Object.freeze({
  401: "unauthorized",
  413: "payload_too_large",
  429: "rate_limited",
  503: "unavailable",
});

/** One HTTP request as the gateway saw it, before folding. */
export interface FinishedRequest {
  /** Route template, or undefined when no route matched. */
  route: string | undefined;
  method: string;
  status: number;
  /** Catalog id (aliases resolved) or the raw name the client sent. */
  model: string | undefined;
  seconds: number;
}

/** A job as the gateway metrics need it. */
export interface ObservedJob {
  model: string;
  kind: string;
}

/** Distinct route templates kept before new ones fold into `other` (the route table is far smaller). */
const ROUTE_LIMIT = 200;

/** Finished requests (and jobs) recorded before they are applied to their series (see {@link RecordBatch}). */
const BATCH = 128;

/** The series one kind of HTTP request records into. */
interface RequestSeries {
  requests: CounterSeries;
  duration: HistogramSeries;
  rejection: CounterSeries | undefined;
}

/** The series the jobs of one model, backend and kind record into. */
interface JobSeries {
  completed: HistogramSeries;
  failed: HistogramSeries;
  cancelled: HistogramSeries;
  ttft: HistogramSeries;
  tpot: HistogramSeries;
  input: CounterSeries;
  output: CounterSeries;
}

/**
 * How long ago a request arrived, in milliseconds, read when asked: Fastify's
 * `reply.elapsedTime`. Fastify reads the clock when a request arrives
 * anyway, so the gateway's metrics take their zero from it instead of
 * reading the clock again.
 */
export interface RequestClock {
  readonly elapsedTime: number;
}

/** A {@link RequestClock} that starts now (tests, callers without a Fastify reply). */
export function requestClockFrom(startedAt: number = metricsNow()): RequestClock {
  return {
    get elapsedTime() {
      return metricsNow() - startedAt;
    },
  };
}

/**
 * One HTTP request as the gateway's metrics watch it, and the job it runs:
 * one object per request (made when it arrives), not one for the request and
 * another for its job. Times are read on the request's clock, whose zero is
 * its arrival. The gateway keeps what its hooks need on it: the reply (as
 * `clock`), the job's model, and the job runner's `close` check.
 */
export class RequestObservation<Clock extends RequestClock = RequestClock> extends GenerationTimer implements JobObserver {
  readonly clock: Clock;
  /** Catalog id of the model of the request's job, once one started. */
  model: string | undefined = undefined;
  /**
   * Called first when the response closes: the job runner's check for a
   * client that went away, so a request keeps one `close` listener, not two.
   */
  onClose: (() => void) | undefined = undefined;
  readonly #finishedJobs: RecordBatch;
  /** The series of the job watched; undefined until one starts, and again once it ended. */
  #series: JobSeries | undefined = undefined;
  /** Whether a job was watched here: a second one gets an observation of its own. */
  #watched = false;

  constructor(clock: Clock, finishedJobs: RecordBatch) {
    super(0);
    this.clock = clock;
    this.#finishedJobs = finishedJobs;
  }

  protected override now(): number {
    return this.clock.elapsedTime;
  }

  /** Watches a job here if none was yet; else a new observation on the same clock does ({@link GatewayRecorder.startJob}'s part). */
  watch(series: JobSeries): RequestObservation<Clock> {
    const observation = this.#watched ? new RequestObservation(this.clock, this.#finishedJobs) : this;
    observation.#watched = true;
    observation.#series = series;
    return observation;
  }

  end(finished: boolean): void {
    const series = this.#series;
    if (series === undefined) return;
    this.#series = undefined;
    // A job refused before it started is a rejection (counted from the HTTP status), not a job.
    if (!this.accepted) return;
    const outcome = this.outcome(finished);
    // From the request's arrival: the job is built and submitted microseconds later. A
    // completed generation's last event is its `finish`, whose time is already read.
    const endedAt = outcome === "completed" && this.lastOutputAt !== undefined ? this.lastOutputAt : this.now();
    const batch = this.#finishedJobs;
    const at = batch.add();
    batch.refs[at * JOB_REFS] = series;
    batch.refs[at * JOB_REFS + 1] = series[outcome];
    const numbers = batch.numbers;
    const first = at * JOB_NUMBERS;
    numbers[first] = endedAt / 1000;
    // NaN when there is none: histograms skip it.
    numbers[first + 1] = this.timeToFirstOutput() ?? NaN;
    numbers[first + 2] = this.timePerOutputToken() ?? NaN;
    numbers[first + 3] = this.promptTokens;
    numbers[first + 4] = this.completionTokens;
  }
}

/** A finished job's record: its series and its outcome's duration series; its duration, time to first token, time per output token, input and output tokens. */
const JOB_REFS = 2;
const JOB_NUMBERS = 5;
/** A finished request's record: its route, method, status and model as they came; its duration. */
const REQUEST_REFS = 4;

function applyJobs(batch: RecordBatch, count: number): void {
  const { refs, numbers } = batch;
  for (let index = 0; index < count; index++) {
    const series = refs[index * JOB_REFS] as JobSeries;
    const first = index * JOB_NUMBERS;
    (refs[index * JOB_REFS + 1] as HistogramSeries).observe(numbers[first]!);
    series.ttft.observe(numbers[first + 1]!);
    series.tpot.observe(numbers[first + 2]!);
    if (numbers[first + 3]! > 0) series.input.inc(numbers[first + 3]);
    if (numbers[first + 4]! > 0) series.output.inc(numbers[first + 4]);
  }
}

export class GatewayRecorder {
  readonly requests: FastCounter<keyof HttpRequestLabels>;
  readonly duration: FastHistogram<keyof HttpRequestLabels>;
  readonly inFlight: FastGauge;
  readonly rejections: FastCounter<"reason" | "model">;
  readonly jobDuration: FastHistogram<"model" | "backend" | "kind" | "outcome">;
  readonly timeToFirstToken: FastHistogram<"model" | "backend" | "kind">;
  readonly timePerOutputToken: FastHistogram<"model" | "backend" | "kind">;
  readonly tokens: FastCounter<"model" | "backend" | "type">;
  readonly #labels: LabelPolicy;
  readonly #routes = new CappedValues(ROUTE_LIMIT);
  readonly #inFlight: GaugeSeries;
  readonly #requestSeries = new KeyedCache<RequestSeries>();
  readonly #jobSeries = new KeyedCache<JobSeries>();
  /**
   * The same series by the raw values a request or job came with, for values
   * that are their own label (known routes, methods and models): the usual
   * request finds its series without folding. Values that fold to something
   * else are never keys here, so no client can grow these maps.
   */
  readonly #requestSeriesByRaw = new KeyedCache<RequestSeries>();
  readonly #jobSeriesByRaw = new KeyedCache<JobSeries>();
  readonly #finishedRequests = new RecordBatch({ capacity: BATCH, refWidth: REQUEST_REFS, numberWidth: 1, apply: (batch, count) => this.#applyRequests(batch, count) });
  readonly #finishedJobs = new RecordBatch({ capacity: BATCH, refWidth: JOB_REFS, numberWidth: JOB_NUMBERS, apply: applyJobs });

  constructor(registry: Registry, labels: LabelPolicy) {
    this.#labels = labels;
    // Every metric here applies what is pending before it is read.
    const registers = [registry];
    const collect = () => {
      this.#finishedRequests.flush();
      this.#finishedJobs.flush();
    };
    const httpLabels = ["route", "method", "status", "model"] as const;
    this.requests = new FastCounter({
      name: "switchboard_http_requests_total",
      help: "HTTP requests answered, by route template, method, status code and model (499: the client went away first).",
      labelNames: httpLabels,
      registers,
      collect,
    });
    this.duration = new FastHistogram({
      name: "switchboard_http_request_duration_seconds",
      help: "Time from receiving an HTTP request to the end of its response (the whole stream for SSE), in seconds.",
      labelNames: httpLabels,
      buckets: HTTP_DURATION_BUCKETS,
      registers,
      collect,
    });
    this.inFlight = new FastGauge({
      name: "switchboard_http_requests_in_flight",
      help: "HTTP requests received whose response has not ended yet.",
      registers,
      collect,
    });
    this.#inFlight = this.inFlight.series();
    this.rejections = new FastCounter({
      name: "switchboard_gateway_rejections_total",
      help: "Requests refused before any work was done for them: unauthorized (401), payload_too_large (413), rate_limited (429), unavailable (503).",
      labelNames: ["reason", "model"],
      registers,
      collect,
    });
    const jobLabels = ["model", "backend", "kind"] as const;
    this.jobDuration = new FastHistogram({
      name: "switchboard_gateway_job_duration_seconds",
      help: "Time from submitting a job to its last event, as the gateway saw it, by model, backend, job kind and outcome (gen_ai.server.request.duration).",
      labelNames: [...jobLabels, "outcome"],
      buckets: GENAI_DURATION_BUCKETS,
      registers,
      collect,
    });
    this.timeToFirstToken = new FastHistogram({
      name: "switchboard_gateway_time_to_first_token_seconds",
      help: "Time from receiving the request to the first output of its job (gen_ai.server.time_to_first_token).",
      labelNames: jobLabels,
      buckets: TTFT_BUCKETS,
      registers,
      collect,
    });
    this.timePerOutputToken = new FastHistogram({
      name: "switchboard_gateway_time_per_output_token_seconds",
      help: "Time per output token after the first, per job (gen_ai.server.time_per_output_token).",
      labelNames: jobLabels,
      buckets: TPOT_BUCKETS,
      registers,
      collect,
    });
    this.tokens = new FastCounter({
      name: "switchboard_gateway_tokens_total",
      help: "Tokens counted by the gateway, by model, backend and type (input: prompt, output: completion) (gen_ai.client.token.usage).",
      labelNames: ["model", "backend", "type"],
      registers,
      collect,
    });
  }

  requestStarted(): void {
    this.#inFlight.inc();
  }

  /**
   * A request arrived ({@link requestStarted}): its observation, on `clock`,
   * for its job ({@link startJob}). Finish it with {@link recordRequest}.
   */
  startRequest<Clock extends RequestClock>(clock: Clock): RequestObservation<Clock> {
    this.requestStarted();
    return new RequestObservation(clock, this.#finishedJobs);
  }

  requestFinished(request: FinishedRequest): void {
    this.recordRequest(request.route, request.method, request.status, request.model, request.seconds);
  }

  /** {@link requestFinished} with the fields as arguments: the per-request hook builds no object. */
  recordRequest(route: string | undefined, method: string, status: number, model: string | undefined, seconds: number): void {
    this.#inFlight.dec();
    const batch = this.#finishedRequests;
    const at = batch.add();
    const refs = batch.refs;
    const first = at * REQUEST_REFS;
    refs[first] = route;
    refs[first + 1] = method;
    refs[first + 2] = status;
    refs[first + 3] = model;
    batch.numbers[at] = seconds;
  }

  #applyRequests(batch: RecordBatch, count: number): void {
    const { refs, numbers } = batch;
    // Traffic comes in runs of alike requests: a record with the previous one's values takes its series.
    let series: RequestSeries | undefined;
    let route: string | undefined;
    let method: string | undefined;
    let status: number | undefined;
    let model: string | undefined;
    for (let index = 0; index < count; index++) {
      const first = index * REQUEST_REFS;
      const same = refs[first] === route && refs[first + 1] === method && refs[first + 2] === status && refs[first + 3] === model;
      if (!same || series === undefined) {
        route = refs[first] as string | undefined;
        method = refs[first + 1] as string;
        status = refs[first + 2] as number;
        model = refs[first + 3] as string | undefined;
        series = this.#requestSeriesByRaw.find4(route, method, status, model) ?? this.#requestSeriesOf(route, method, status, model);
      }
      // The raw model name is the client's: not kept alive here until the slot is reused.
      refs[first + 3] = undefined;
      series.requests.inc();
      series.duration.observe(numbers[index]!);
      series.rejection?.inc();
    }
  }

  #requestSeriesOf(route: string | undefined, method: string, status: number, model: string | undefined): RequestSeries {
    const routeLabel = route === undefined ? UNMATCHED_ROUTE : this.#routes.fold(route);
    const methodLabel = foldMethod(method);
    const statusLabel = foldStatus(status);
    const modelLabel = this.#labels.model(model);
    const series =
      this.#requestSeries.find4(routeLabel, methodLabel, statusLabel, modelLabel) ??
      this.#requestSeries.set4(routeLabel, methodLabel, statusLabel, modelLabel, this.#newRequestSeries(routeLabel, methodLabel, statusLabel, modelLabel, status));
    // Statuses are bounded by HTTP (100-999); the other values only when they are their own label.
    if ((route === undefined || routeLabel === route) && methodLabel === method && (model === undefined || modelLabel === model)) this.#requestSeriesByRaw.set4(route, method, status, model, series);
    return series;
  }

  #newRequestSeries(route: string, method: string, status: string, model: string, code: number): RequestSeries {
    const reason = REJECTION_REASONS[code];
    return {
      requests: this.requests.series(route, method, status, model),
      duration: this.duration.series(route, method, status, model),
      rejection: reason === undefined ? undefined : this.rejections.series(reason, model),
    };
  }

  /**
   * Starts watching one job of a request: input and output tokens, time to
   * first token (from the request's arrival), time per output token, and the
   * job's duration and outcome when `end` is called. The request's own
   * observation watches its first job; `request` may also be a bare clock.
   */
  startJob(job: ObservedJob, request: RequestObservation | RequestClock): JobObserver {
    const observation = request instanceof RequestObservation ? request : new RequestObservation(request, this.#finishedJobs);
    return observation.watch(this.#seriesOf(job));
  }

  /** The same, as a wrapper around the job's event iterator (for callers that cannot call `see`). */
  observeJob(job: ObservedJob, request: RequestObservation | RequestClock, events: AsyncIterator<JobEvent>): AsyncIterator<JobEvent> {
    const observation = this.startJob(job, request);
    return tapEvents(
      events,
      (event) => observation.see(event),
      (how) => observation.end(how === "done"),
    );
  }

  #seriesOf(job: ObservedJob): JobSeries {
    const known = this.#jobSeriesByRaw.find2(job.model, job.kind);
    if (known !== undefined) return known;
    const model = this.#labels.model(job.model);
    const kind = this.#labels.kind(job.kind);
    const series = this.#jobSeries.find2(model, kind) ?? this.#jobSeries.set2(model, kind, this.#newJobSeries(model, kind, this.#labels.backendOfModel(job.model)));
    if (model === job.model && kind === job.kind) this.#jobSeriesByRaw.set2(job.model, job.kind, series);
    return series;
  }

  #newJobSeries(model: string, kind: string, backend: string): JobSeries {
    return {
      completed: this.jobDuration.series(model, backend, kind, "completed"),
      failed: this.jobDuration.series(model, backend, kind, "failed"),
      cancelled: this.jobDuration.series(model, backend, kind, "cancelled"),
      ttft: this.timeToFirstToken.series(model, backend, kind),
      tpot: this.timePerOutputToken.series(model, backend, kind),
      input: this.tokens.series(model, backend, "input"),
      output: this.tokens.series(model, backend, "output"),
    };
  }
}
