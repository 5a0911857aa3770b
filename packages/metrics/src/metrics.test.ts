import { describe, expect, it } from "vitest";
import { silentLogger, type Backend, type Job, type JobEvent } from "@switchboard/protocol";
import { ConsoleStatsWindow, GenerationTimer, LINT_FAILING_DEFAULTS, OTHER, Registry, bucketQuantile, createMetrics, llamaQueueLabel, requestClockFrom, type SwitchboardMetrics } from "./index.js";
import { parseExposition, promtoolCheck, sampleSum, seriesCount, type Exposition } from "./testing.js";

const CATALOG = [
  { id: "tiny", backend: "llama" },
  { id: "org/chat:q4", backend: "llama" },
  { id: "summarizer", backend: "hf" },
  { id: "captioner", backend: "hf", endpointUrl: "http://127.0.0.1:1/endpoints/captioner" },
];

const chatJob = (model: string): Job => ({ kind: "chat", id: "job-1", requestId: "req-1", model, messages: [{ role: "user", content: "hi" }], maxTokens: 8, sampling: {}, stop: [] });

async function exposition(metrics: SwitchboardMetrics): Promise<Exposition> {
  return parseExposition(await metrics.registry.metrics());
}

/** Feeds `events` through an iterator wrapper and reads it to the end (or `stopAfter` events). */
async function drain(wrap: (events: AsyncIterator<JobEvent>) => AsyncIterator<JobEvent>, events: JobEvent[], stopAfter?: number): Promise<void> {
  async function* source() {
    yield* events;
  }
  const iterator = wrap(source());
  for (let read = 0; ; read++) {
    if (stopAfter !== undefined && read === stopAfter) {
      await iterator.return?.();
      return;
    }
    const result = await iterator.next();
    if (result.done) return;
  }
}

const answer = (model: string, promptTokens: number, pieces: string[], completionTokens: number): JobEvent[] => [
  { type: "accepted", jobId: "job-1", model, promptTokens },
  ...pieces.map((text): JobEvent => ({ type: "text-delta", index: 0, text })),
  { type: "finish", index: 0, finishReason: "stop", completionTokens },
];

/** Exercises every recorder once, so every family has samples. */
async function recordEverything(metrics: SwitchboardMetrics): Promise<void> {
  const gateway = metrics.gateway;
  for (const status of [200, 401, 413, 429, 503, 499]) {
    gateway.requestStarted();
    gateway.requestFinished({ route: "/v1/chat/completions", method: "POST", status, model: "tiny", seconds: 0.02 });
  }
  await drain((events) => gateway.observeJob(chatJob("tiny"), requestClockFrom(), events), answer("tiny", 5, ["a", "b", "c"], 3));
  metrics.queue.jobStarted(llamaQueueLabel("tiny"), 0.001);
  metrics.queue.jobFinished(llamaQueueLabel("tiny"), "completed", 0.01);
  metrics.queue.jobRetried("hf");
  metrics.queue.jobStalled("hf");
  metrics.queue.watchDepth(() => [{ queue: "router", state: "waiting", count: 2 }]);
  const backend: Backend = {
    name: "llama",
    models: () => ["tiny"],
    modelStates: () => [{ id: "tiny", state: "ready" }],
    run: async function* () {
      yield* answer("tiny", 4, ["x", "y"], 2);
    },
    close: async () => {},
  };
  for await (const _event of metrics.worker.instrument(backend).run(chatJob("tiny"), { signal: new AbortController().signal, logger: silentLogger })) void _event;
  metrics.llama.modelLoaded({ model: "tiny", seconds: 0.3, outcome: "ok" });
  metrics.llama.watch(() => [{ id: "tiny", sequences: 4, free: 3, waiting: 1, contextTokens: 120, cachedContextTokens: 80, contextCapacity: 4096 }]);
  metrics.llama.jobFinished({ model: "tiny", kind: "chat", outcome: "completed", promptTokens: 40, reusedPromptTokens: 39, completionTokens: 2, seconds: 0.02 });
  metrics.hf.upstreamCall({ model: "summarizer", provider: "hf-inference", seconds: 0.2 });
  metrics.hf.upstreamCall({ model: "summarizer", provider: "hf-inference", seconds: 1.5, error: "upstream_timeout" });
  metrics.hf.upstreamRetry({ model: "summarizer", provider: "hf-inference" });
  metrics.hf.watchCircuits(() => [{ model: "summarizer", state: "open" }]);
  metrics.router.stageFinished({ stage: "plan", seconds: 0.5, outcome: "ok" });
  metrics.router.planMade({ tasks: 3, replans: 1, source: "remote", fallback: true });
  metrics.router.taskFinished({ task: "summarization", backend: "hf", status: "succeeded", seconds: 0.2 });
  metrics.router.runFinished({ status: "completed", seconds: 1.2, overheadSeconds: 0.004 });
}

describe("createMetrics", () => {
  it("defines every family once, with samples after recording, and the exposition passes promtool", async () => {
    const metrics = createMetrics({ models: CATALOG });
    await recordEverything(metrics);
    const text = await metrics.registry.metrics();
    const check = promtoolCheck(text);
    expect(check.output).toBe("");
    expect(check.ok).toBe(true);
    const parsed = parseExposition(text);
    const families = [...parsed.types.keys()].filter((name) => name.startsWith("switchboard_"));
    expect(families.length).toBeGreaterThanOrEqual(30);
    const empty = families.filter((family) => !parsed.samples.some((sample) => sample.name === family || sample.name.startsWith(`${family}_`)));
    expect(empty).toEqual([]);
    // Prometheus naming: counters end in _total, nothing else does; durations are seconds.
    for (const family of families) {
      expect(family.endsWith("_total")).toBe(parsed.types.get(family) === "counter");
      if (/duration|latency|_wait_|_run_/.test(family)) expect(family).toMatch(/_seconds$/);
    }
    // prom-client's process metrics are there, minus the gauges with a counter's name.
    expect(parsed.types.has("process_cpu_user_seconds_total")).toBe(true);
    expect(parsed.types.has("nodejs_eventloop_lag_seconds")).toBe(true);
    for (const name of LINT_FAILING_DEFAULTS) expect(parsed.types.has(name)).toBe(false);
  });

  it("accepts a bare registry, as the first version did", async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    expect(metrics.registry).toBe(registry);
    expect(metrics.httpRequestsTotal).toBe(metrics.gateway.requests);
    metrics.gateway.requestStarted();
    metrics.gateway.requestFinished({ route: "/health", method: "GET", status: 200, model: undefined, seconds: 0.001 });
    expect(await registry.metrics()).toContain('switchboard_http_requests_total{route="/health",method="GET",status="200",model="none"} 1');
  });

  it("can leave the process metrics out", async () => {
    const metrics = createMetrics({ processMetrics: false });
    expect(await metrics.registry.metrics()).not.toContain("process_cpu");
  });
});

describe("gateway metrics", () => {
  it("count requests, in-flight and rejections by reason with bounded labels", async () => {
    const metrics = createMetrics({ models: CATALOG });
    const gateway = metrics.gateway;
    for (let index = 0; index < 3; index++) gateway.requestStarted();
    gateway.requestFinished({ route: "/v1/chat/completions", method: "POST", status: 200, model: "tiny", seconds: 0.05 });
    gateway.requestFinished({ route: "/v1/chat/completions", method: "POST", status: 429, model: "tiny", seconds: 0.001 });
    gateway.requestFinished({ route: undefined, method: "BREW", status: 401, model: "gpt-17", seconds: 0.001 });
    gateway.requestStarted();
    const parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_http_requests_in_flight")).toBe(1);
    expect(sampleSum(parsed, "switchboard_http_requests_total", { route: "/v1/chat/completions", model: "tiny" })).toBe(2);
    expect(sampleSum(parsed, "switchboard_http_requests_total", { route: "unmatched", method: OTHER, status: "401", model: OTHER })).toBe(1);
    expect(sampleSum(parsed, "switchboard_gateway_rejections_total", { reason: "rate_limited", model: "tiny" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_gateway_rejections_total", { reason: "unauthorized", model: OTHER })).toBe(1);
    expect(sampleSum(parsed, "switchboard_http_request_duration_seconds_count", { status: "200" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_http_request_duration_seconds_sum", { status: "200" })).toBeCloseTo(0.05);
  });

  it("a job's tokens, first token and duration move by exactly what its events say", async () => {
    const metrics = createMetrics({ models: CATALOG });
    const started = requestClockFrom();
    await drain((events) => metrics.gateway.observeJob(chatJob("org/chat:q4"), started, events), answer("org/chat:q4", 11, ["He", "llo", "!"], 4));
    await drain((events) => metrics.gateway.observeJob(chatJob("org/chat:q4"), started, events), answer("org/chat:q4", 9, ["a", "b"], 2), 2);
    // Refused before it started: a rejection (counted from the status), not a job.
    await drain((events) => metrics.gateway.observeJob(chatJob("org/chat:q4"), started, events), [{ type: "error", error: { message: "busy", type: "rate_limit_error", param: null, code: "rate_limited", status: 429 } }]);
    const parsed = await exposition(metrics);
    const labels = { model: "org/chat:q4", backend: "llama", kind: "chat" };
    expect(sampleSum(parsed, "switchboard_gateway_tokens_total", { model: "org/chat:q4", backend: "llama", type: "input" })).toBe(11 + 9);
    expect(sampleSum(parsed, "switchboard_gateway_tokens_total", { model: "org/chat:q4", backend: "llama", type: "output" })).toBe(4);
    expect(sampleSum(parsed, "switchboard_gateway_job_duration_seconds_count", { ...labels, outcome: "completed" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_gateway_job_duration_seconds_count", { ...labels, outcome: "cancelled" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_gateway_job_duration_seconds_count")).toBe(2);
    expect(sampleSum(parsed, "switchboard_gateway_time_to_first_token_seconds_count", labels)).toBe(2);
    expect(sampleSum(parsed, "switchboard_gateway_time_per_output_token_seconds_count", labels)).toBe(1);
  });

  it("a request's observation counts its job once, and a second job of the same request on its own", async () => {
    const metrics = createMetrics({ models: CATALOG });
    let elapsedTime = 0;
    const request = metrics.gateway.startRequest({
      get elapsedTime() {
        return elapsedTime;
      },
    });
    const run = (promptTokens: number, completionTokens: number, firstAt: number, lastAt: number) => {
      const job = metrics.gateway.startJob(chatJob("tiny"), request);
      job.see({ type: "accepted", jobId: "job-1", model: "tiny", promptTokens });
      elapsedTime = firstAt;
      job.see({ type: "text-delta", index: 0, text: "a" });
      elapsedTime = lastAt;
      job.see({ type: "finish", index: 0, finishReason: "stop", completionTokens });
      job.end(true);
      // Told twice (a runner's `close` after the stream's end): counted once.
      job.end(true);
    };
    run(5, 3, 100, 300);
    run(7, 2, 400, 500);
    metrics.gateway.recordRequest("/v1/chat/completions", "POST", 200, "tiny", 0.5);
    const parsed = await exposition(metrics);
    const labels = { model: "tiny", backend: "llama", kind: "chat" };
    expect(sampleSum(parsed, "switchboard_gateway_tokens_total", { model: "tiny", backend: "llama", type: "input" })).toBe(5 + 7);
    expect(sampleSum(parsed, "switchboard_gateway_tokens_total", { model: "tiny", backend: "llama", type: "output" })).toBe(3 + 2);
    expect(sampleSum(parsed, "switchboard_gateway_job_duration_seconds_count", { ...labels, outcome: "completed" })).toBe(2);
    // Both on the request's clock: the first job ended at 0.3 s, the second at 0.5 s.
    expect(sampleSum(parsed, "switchboard_gateway_job_duration_seconds_sum", { ...labels, outcome: "completed" })).toBeCloseTo(0.3 + 0.5);
    expect(sampleSum(parsed, "switchboard_gateway_time_to_first_token_seconds_sum", labels)).toBeCloseTo(0.1 + 0.4);
    // (0.3 - 0.1) / 2 tokens after the first, and (0.5 - 0.4) / 1.
    expect(sampleSum(parsed, "switchboard_gateway_time_per_output_token_seconds_sum", labels)).toBeCloseTo(0.1 + 0.1);
    expect(sampleSum(parsed, "switchboard_http_requests_in_flight")).toBe(0);
  });

  it("every finished request, job and queued job is counted, across full batches and scrapes between them", async () => {
    const metrics = createMetrics({ models: CATALOG });
    const queue = llamaQueueLabel("tiny");
    let finished = 0;
    const finish = async (requests: number) => {
      for (const end = finished + requests; finished < end; finished++) {
        const index = finished;
        metrics.gateway.requestStarted();
        metrics.gateway.requestFinished({ route: "/v1/chat/completions", method: "POST", status: index % 10 === 0 ? 429 : 200, model: "tiny", seconds: 0.25 });
        metrics.queue.jobStarted(queue, 0.5);
        metrics.queue.jobFinished(queue, index % 10 === 0 ? "rejected" : "completed", 2);
        await drain((events) => metrics.gateway.observeJob(chatJob("tiny"), requestClockFrom(), events), answer("tiny", 3, ["a", "b"], 2));
      }
    };
    // A scrape after a few, then more than any batch holds, then a scrape.
    await finish(7);
    let parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_http_requests_total")).toBe(7);
    expect(sampleSum(parsed, "switchboard_queue_jobs_total", { queue, outcome: "completed" })).toBe(6);
    await finish(993);
    parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_http_requests_total")).toBe(1000);
    expect(sampleSum(parsed, "switchboard_http_requests_in_flight")).toBe(0);
    expect(sampleSum(parsed, "switchboard_gateway_rejections_total", { reason: "rate_limited" })).toBe(100);
    expect(sampleSum(parsed, "switchboard_http_request_duration_seconds_sum")).toBeCloseTo(250);
    expect(sampleSum(parsed, "switchboard_http_request_duration_seconds_bucket", { le: "+Inf" })).toBe(1000);
    expect(sampleSum(parsed, "switchboard_gateway_tokens_total", { type: "input" })).toBe(3000);
    expect(sampleSum(parsed, "switchboard_gateway_tokens_total", { type: "output" })).toBe(2000);
    expect(sampleSum(parsed, "switchboard_gateway_job_duration_seconds_count", { outcome: "completed" })).toBe(1000);
    expect(sampleSum(parsed, "switchboard_gateway_time_to_first_token_seconds_count")).toBe(1000);
    expect(sampleSum(parsed, "switchboard_queue_wait_seconds_sum", { queue })).toBeCloseTo(500);
    expect(sampleSum(parsed, "switchboard_queue_jobs_total", { queue, outcome: "rejected" })).toBe(100);
    expect(sampleSum(parsed, "switchboard_queue_run_seconds_count", { queue, outcome: "completed" })).toBe(900);
    expect(sampleSum(parsed, "switchboard_queue_run_seconds_sum", { queue, outcome: "completed" })).toBeCloseTo(1800);
  });

  it("time per output token is the span after the first token over the tokens after it", () => {
    const timer = new GenerationTimer(1000);
    timer.see({ type: "accepted", jobId: "j", model: "m", promptTokens: 3 }, 1001);
    timer.see({ type: "text-delta", index: 0, text: "a" }, 1010);
    timer.see({ type: "text-delta", index: 0, text: "bcd" }, 1040);
    timer.see({ type: "finish", index: 0, finishReason: "stop", completionTokens: 4 }, 1070);
    expect(timer.timeToFirstOutput()).toBeCloseTo(0.01);
    expect(timer.timePerOutputToken()).toBeCloseTo(0.06 / 3);
  });
});

describe("label bounds", () => {
  it("a value that folds is labelled by its fold every time, also after known values were seen", async () => {
    const metrics = createMetrics({ models: CATALOG });
    const tiny = llamaQueueLabel("org/chat:q4");
    for (const queue of [tiny, "none", "other", "", tiny, "none"]) metrics.queue.jobFinished(queue, "completed", 0.01);
    for (const model of ["org/chat:q4", "none", undefined, "org/chat:q4", "none"]) {
      metrics.gateway.requestStarted();
      metrics.gateway.requestFinished({ route: "/v1/chat/completions", method: "POST", status: 200, model, seconds: 0.001 });
    }
    const parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_queue_jobs_total", { queue: tiny, outcome: "completed" })).toBe(2);
    // A queue or model literally named "none" is unknown: `other`, not the label of an absent value.
    expect(sampleSum(parsed, "switchboard_queue_jobs_total", { queue: OTHER, outcome: "completed" })).toBe(3);
    expect(sampleSum(parsed, "switchboard_queue_jobs_total", { queue: "none", outcome: "completed" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_http_requests_total", { model: "org/chat:q4" })).toBe(2);
    expect(sampleSum(parsed, "switchboard_http_requests_total", { model: OTHER })).toBe(2);
    expect(sampleSum(parsed, "switchboard_http_requests_total", { model: "none" })).toBe(1);
  });

  it("1,000 random model names, routes, queues, tasks and providers add no series beyond the catalog's", async () => {
    const metrics = createMetrics({ models: CATALOG });
    const random = () => Math.random().toString(36).slice(2);
    for (let index = 0; index < 1000; index++) {
      metrics.gateway.requestStarted();
      metrics.gateway.requestFinished({ route: undefined, method: "GET", status: 404, model: random(), seconds: 0.001 });
      metrics.queue.jobFinished(`llama.${random()}`, "completed", 0.01);
      metrics.router.taskFinished({ task: random(), backend: random(), status: random(), seconds: 0.1 });
      metrics.hf.upstreamCall({ model: random(), provider: random(), seconds: 0.1, error: random() });
    }
    const parsed = await exposition(metrics);
    expect(seriesCount(parsed, "switchboard_http_requests_total")).toBe(1);
    // One series per outcome, all of the `other` queue.
    expect(seriesCount(parsed, "switchboard_queue_jobs_total")).toBe(4);
    expect(seriesCount(parsed, "switchboard_router_tasks_total")).toBe(1);
    expect(seriesCount(parsed, "switchboard_hf_upstream_errors_total")).toBe(1);
    expect(new Set(parsed.samples.filter((sample) => sample.name === "switchboard_queue_jobs_total").map((sample) => sample.labels.queue))).toEqual(new Set([OTHER]));
  });

  it("route templates are capped as a safety net", async () => {
    const metrics = createMetrics();
    for (let index = 0; index < 500; index++) {
      metrics.gateway.requestStarted();
      metrics.gateway.requestFinished({ route: `/generated/${index}`, method: "GET", status: 200, model: undefined, seconds: 0.001 });
    }
    expect(seriesCount(await exposition(metrics), "switchboard_http_requests_total")).toBe(201);
  });

  it("queue names follow the fleet's: llama.<encoded id>, hf, router", () => {
    const metrics = createMetrics({ models: CATALOG });
    expect(metrics.labels.queue("llama.org%2Fchat%3Aq4")).toBe("llama.org%2Fchat%3Aq4");
    expect(metrics.labels.queue("hf")).toBe("hf");
    expect(metrics.labels.queue("llama.summarizer")).toBe(OTHER);
    expect(metrics.labels.provider("captioner")).toBe("endpoint");
    expect(metrics.labels.provider("summarizer")).toBe("hf-inference");
  });
});

describe("queue, worker and engine gauges read at scrape time", () => {
  it("queue depth sums its sources by queue and state; a failing source reports nothing", async () => {
    const metrics = createMetrics({ models: CATALOG });
    metrics.queue.watchDepth(() => [
      { queue: "llama.tiny", state: "waiting", count: 3 },
      { queue: "llama.tiny", state: "active", count: 4 },
    ]);
    metrics.queue.watchDepth(async () => [{ queue: "llama.tiny", state: "waiting", count: 2 }]);
    const stop = metrics.queue.watchDepth(() => {
      throw new Error("redis down");
    });
    let parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_queue_depth", { queue: "llama.tiny", state: "waiting" })).toBe(5);
    expect(sampleSum(parsed, "switchboard_queue_depth", { queue: "llama.tiny", state: "active" })).toBe(4);
    stop();
    parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_queue_depth")).toBe(9);
  });

  it("llama sequences, waiting jobs and context tokens come from the backend's queue states", async () => {
    const metrics = createMetrics({ models: CATALOG });
    let free = 4;
    metrics.llama.watch(() => [{ id: "tiny", sequences: 4, free, waiting: 0, contextTokens: (4 - free) * 100, contextCapacity: 4 * 1024 }]);
    free = 1;
    const parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_llama_sequences", { model: "tiny", state: "busy" })).toBe(3);
    expect(sampleSum(parsed, "switchboard_llama_sequences", { model: "tiny", state: "idle" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_llama_context_used_tokens", { model: "tiny" })).toBe(300);
    expect(sampleSum(parsed, "switchboard_llama_context_capacity_tokens", { model: "tiny" })).toBe(4096);
  });

  it("a circuit is 1 for its current state and 0 for the others", async () => {
    const metrics = createMetrics({ models: CATALOG });
    let state = "closed";
    metrics.hf.watchCircuits(() => [{ model: "summarizer", state }]);
    state = "half-open";
    const parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_hf_circuit_state", { model: "summarizer", state: "half-open" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_hf_circuit_state", { model: "summarizer" })).toBe(1);
  });

  it("the llama engine's report of a job feeds the worker metrics, decode speed included", async () => {
    const metrics = createMetrics({ models: CATALOG });
    metrics.llama.jobFinished({ model: "tiny", kind: "chat", outcome: "completed", promptTokens: 12, completionTokens: 21, seconds: 0.05, decodeSeconds: 0.04 });
    metrics.llama.jobFinished({ model: "tiny", kind: "chat", outcome: "cancelled", promptTokens: 3, completionTokens: 1, seconds: 0.01 });
    const parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_worker_tokens_total", { model: "tiny", backend: "llama", type: "input" })).toBe(15);
    expect(sampleSum(parsed, "switchboard_worker_tokens_total", { model: "tiny", backend: "llama", type: "output" })).toBe(22);
    expect(sampleSum(parsed, "switchboard_worker_job_duration_seconds_count", { model: "tiny", outcome: "cancelled" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_worker_decode_tokens_per_second_count")).toBe(1);
    expect(sampleSum(parsed, "switchboard_worker_decode_tokens_per_second_sum")).toBeCloseTo(20 / 0.04);
  });

  it("an instrumented backend forwards everything and measures decode speed", async () => {
    const metrics = createMetrics({ models: CATALOG });
    const inner: Backend = {
      name: "llama",
      models: () => ["tiny"],
      modelStates: () => [{ id: "tiny", state: "ready" }],
      async *run() {
        yield { type: "accepted", jobId: "j", model: "tiny", promptTokens: 6 };
        yield { type: "text-delta", index: 0, text: "a" };
        await new Promise((resolve) => setTimeout(resolve, 20));
        yield { type: "text-delta", index: 0, text: "b" };
        yield { type: "finish", index: 0, finishReason: "length", completionTokens: 11 };
      },
      close: async () => {},
    };
    const backend = metrics.worker.instrument(inner);
    expect([backend.name, backend.models(), backend.modelStates()]).toEqual(["llama", ["tiny"], [{ id: "tiny", state: "ready" }]]);
    const seen: JobEvent[] = [];
    for await (const event of backend.run(chatJob("tiny"), { signal: new AbortController().signal, logger: silentLogger })) seen.push(event);
    expect(seen.map((event) => event.type)).toEqual(["accepted", "text-delta", "text-delta", "finish"]);
    const parsed = await exposition(metrics);
    expect(sampleSum(parsed, "switchboard_worker_tokens_total", { model: "tiny", type: "output" })).toBe(11);
    expect(sampleSum(parsed, "switchboard_worker_decode_tokens_per_second_count")).toBe(1);
    // 10 tokens after the first in about 20 ms (timers may fire a little early): about 500 tokens/s at most.
    expect(sampleSum(parsed, "switchboard_worker_decode_tokens_per_second_sum")).toBeLessThan(10 / 0.019);
    expect(sampleSum(parsed, "switchboard_worker_decode_tokens_per_second_sum")).toBeGreaterThan(0);
  });
});

describe("console statistics", () => {
  it("bucketQuantile interpolates inside a bucket as histogram_quantile does", () => {
    const now = new Map([[0.1, 50], [0.2, 100], [Infinity, 100]]);
    expect(bucketQuantile(0.5, now, undefined)).toBeCloseTo(0.1);
    expect(bucketQuantile(0.75, now, undefined)).toBeCloseTo(0.15);
    expect(bucketQuantile(0.75, now, new Map([[0.1, 50], [0.2, 50], [Infinity, 50]]))).toBeCloseTo(0.175);
    expect(bucketQuantile(0.5, now, now)).toBeNull();
  });

  it("rates and percentiles cover API traffic over the window, not the console's own polling", async () => {
    const metrics = createMetrics({ models: CATALOG });
    let clock = 0;
    const window = new ConsoleStatsWindow({ gateway: metrics.gateway, queue: metrics.queue, windowSeconds: 10, now: () => clock });
    const request = (route: string, status: number, seconds: number) => {
      metrics.gateway.requestStarted();
      metrics.gateway.requestFinished({ route, method: "POST", status, model: "tiny", seconds });
    };
    clock = 10_000;
    for (let index = 0; index < 18; index++) request("/v1/chat/completions", 200, 0.03);
    for (let index = 0; index < 2; index++) request("/v1/chat/completions", 500, 0.03);
    for (let index = 0; index < 50; index++) request("/v1/console/stats", 200, 0.001);
    const stats = await window.stats();
    expect(stats.windowSeconds).toBe(10);
    expect(stats.requests.perSecond).toBeCloseTo(2);
    expect(stats.requests.errorsPerSecond).toBeCloseTo(0.2);
    expect(stats.requests.latency.p50).toBeGreaterThan(0.025);
    expect(stats.requests.latency.p50).toBeLessThanOrEqual(0.05);
    // Polled again soon after: the traffic is still inside the window.
    clock = 12_000;
    expect((await window.stats()).requests.perSecond).toBeCloseTo(20 / 12);
    clock = 20_000;
    const quiet = await window.stats();
    expect(quiet.requests.perSecond).toBe(0);
    expect(quiet.requests.latency.p50).toBeNull();
  });
});
