/**
 * The BullMQ transport end to end on the real Redis, with a scripted backend
 * served by worker runtimes in this process.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BullmqDispatcher, FleetKeys, llamaQueueName, serveBackend, type BackendServer, type BullmqDispatcherOptions, type ServeBackendOptions } from "../src/index.js";
import { dispatcherTimings, workerTimings } from "./fleet-timings.js";
import { consume, waitFor, waitForLiveWorkers } from "./helpers.js";
import { TEST_MODEL, collect, errorOf, scriptJob, textOf } from "./jobs.js";
import { deletePrefix, randomPrefix, redisUrl } from "./redis-fixture.js";
import { RecordingMetrics } from "./recording-metrics.js";
import { ScriptedBackend } from "./scripted-backend.js";

const queueName = llamaQueueName(TEST_MODEL);

describe("BullMQ transport with a scripted backend", () => {
  let prefix: string;
  let dispatchers: BullmqDispatcher[];
  let servers: BackendServer[];

  beforeEach(() => {
    prefix = randomPrefix();
    dispatchers = [];
    servers = [];
  });

  afterEach(async () => {
    await Promise.all(dispatchers.map((dispatcher) => dispatcher.close()));
    await Promise.all(servers.map((server) => server.close({ drainTimeoutMs: 0 })));
    await deletePrefix(redisUrl, prefix);
  });

  function startWorker(tag: string, options: Partial<ServeBackendOptions> = {}) {
    const backend = new ScriptedBackend([TEST_MODEL], tag);
    const server = serveBackend(backend, { connection: redisUrl, prefix, concurrencyPerModel: 2, workerId: `worker-${tag}`, ...workerTimings, ...options });
    servers.push(server);
    return { backend, server };
  }

  async function startDispatcher(options: Partial<BullmqDispatcherOptions> = {}) {
    const dispatcher = new BullmqDispatcher({ connection: redisUrl, prefix, ...dispatcherTimings, ...options });
    dispatchers.push(dispatcher);
    await waitFor("dispatcher ready", () => dispatcher.ready());
    return dispatcher;
  }

  it("streams a job's events back in order, accepted first and finish last", async () => {
    startWorker("a");
    const dispatcher = await startDispatcher();
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);

    const events = await collect(dispatcher.submit(scriptJob("echo:300")));

    expect(events[0]).toMatchObject({ type: "accepted", model: TEST_MODEL, worker: "worker-a" });
    expect(textOf(events)).toBe(Array.from({ length: 300 }, (_, index) => `at${index} `).join(""));
    expect(events.at(-1)).toEqual({ type: "finish", index: 0, finishReason: "length", completionTokens: 300 });
    expect(events.filter((event) => event.type === "accepted")).toHaveLength(1);
  });

  it("delivers an error found before generation as the first and only event", async () => {
    startWorker("a");
    const dispatcher = await startDispatcher();
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);

    const events = await collect(dispatcher.submit(scriptJob("reject")));

    expect(events).toEqual([
      { type: "error", error: { status: 400, type: "invalid_request_error", code: "scripted_rejection", param: "prompt", message: "Rejected by script." } },
    ]);
  });

  it("answers 503 model_unavailable with retryAfterSeconds when no worker serves the model", async () => {
    const dispatcher = await startDispatcher();

    const events = await collect(dispatcher.submit(scriptJob("echo:1", { model: "nobody-serves-this" })));

    expect(events).toHaveLength(1);
    expect(errorOf(events)).toMatchObject({ status: 503, code: "model_unavailable", retryAfterSeconds: 2 });
  });

  it("shares one queue between two worker runtimes, and both take work", async () => {
    startWorker("a", { concurrencyPerModel: 1 });
    startWorker("b", { concurrencyPerModel: 1 });
    const dispatcher = await startDispatcher();
    await waitForLiveWorkers(redisUrl, prefix, queueName, 2);

    const results = await Promise.all(Array.from({ length: 6 }, () => collect(dispatcher.submit(scriptJob("slow:40:3")))));

    const workers = new Set(results.map((events) => (events[0]?.type === "accepted" ? events[0].worker : undefined)));
    expect(workers).toEqual(new Set(["worker-a", "worker-b"]));
    for (const events of results) expect(events.at(-1)).toMatchObject({ type: "finish" });
  });

  it("keeps 50 requests in flight without per-request listeners or leak warnings", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on("warning", onWarning);
    try {
      startWorker("a", { concurrencyPerModel: 8 });
      startWorker("b", { concurrencyPerModel: 8 });
      const dispatcher = await startDispatcher({ maxWaiting: 100 });
      await waitForLiveWorkers(redisUrl, prefix, queueName, 2);

      const streams = Array.from({ length: 50 }, () => collect(dispatcher.submit(scriptJob("slow:20:5"))));
      await waitFor("50 in flight", () => dispatcher.inFlight === 50, 5000, 1);
      const results = await Promise.all(streams);

      for (const events of results) expect(events.at(-1)).toMatchObject({ type: "finish", completionTokens: 5 });
      expect(warnings.filter((warning) => warning.includes("MaxListeners"))).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("answers 429 with retryAfterSeconds once a queue holds its bound of waiting jobs", async () => {
    startWorker("a", { concurrencyPerModel: 1 });
    const dispatcher = await startDispatcher({ maxWaiting: 2 });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    const controller = new AbortController();

    const running = consume(dispatcher.submit(scriptJob("hang"), { signal: controller.signal }));
    expect(await running.first).toMatchObject({ type: "accepted" });
    const waiting = [consume(dispatcher.submit(scriptJob("hang"), { signal: controller.signal })), consume(dispatcher.submit(scriptJob("hang"), { signal: controller.signal }))];
    const queue = new Queue(queueName, { connection: { url: redisUrl }, prefix });
    try {
      await waitFor("two waiting jobs", async () => (await queue.getWaitingCount()) === 2);

      const refused = await collect(dispatcher.submit(scriptJob("echo:1")));

      expect(refused).toHaveLength(1);
      expect(errorOf(refused)).toMatchObject({ status: 429, type: "rate_limit_error" });
      expect(errorOf(refused)?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    } finally {
      controller.abort();
      await Promise.all([running.all, ...waiting.map((stream) => stream.all)]);
      await queue.close();
    }
  });

  it("removes a waiting job from the queue when its client disconnects", async () => {
    const { backend } = startWorker("a", { concurrencyPerModel: 1 });
    const dispatcher = await startDispatcher();
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    const busy = new AbortController();
    const running = consume(dispatcher.submit(scriptJob("hang"), { signal: busy.signal }));
    expect(await running.first).toMatchObject({ type: "accepted" });
    const queue = new Queue(queueName, { connection: { url: redisUrl }, prefix });
    try {
      const client = new AbortController();
      const queuedJob = scriptJob("echo:3");
      const queued = consume(dispatcher.submit(queuedJob, { signal: client.signal }));
      await waitFor("the job waiting", async () => (await queue.getWaitingCount()) === 1);

      client.abort();

      expect(await queued.all).toEqual([]);
      await waitFor("the job removed", async () => (await queue.getWaitingCount()) === 0, 2000);
      busy.abort();
      await running.all;
      await sleep(300);
      expect(backend.runs.map((run) => run.jobId)).not.toContain(queuedJob.id);
    } finally {
      busy.abort();
      await queue.close();
    }
  });

  it("aborts the backend's signal when the client of a running job disconnects", async () => {
    const { backend } = startWorker("a");
    const dispatcher = await startDispatcher();
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    const client = new AbortController();
    const stream = consume(dispatcher.submit(scriptJob("hang"), { signal: client.signal }));
    expect(await stream.first).toMatchObject({ type: "accepted" });

    const started = Date.now();
    client.abort();
    await stream.all;

    await waitFor("the backend to see the abort", () => backend.runs[0]?.signal.aborted === true && backend.runs[0].finished, 2000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(servers[0]!.running()).toBe(0);
  });

  it("ends a job at its deadline with a timeout error and stops the backend", async () => {
    const { backend } = startWorker("a");
    const dispatcher = await startDispatcher();
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);

    const events = await collect(dispatcher.submit(scriptJob("hang", { deadlineAt: Date.now() + 600 })));

    expect(events[0]).toMatchObject({ type: "accepted" });
    expect(events.at(-1)).toMatchObject({ type: "error", error: { status: 504, type: "timeout_error" } });
    await waitFor("the backend stopped", () => backend.runs[0]?.finished === true, 2000);
  });

  it("discards a job whose request is no longer wanted: its generation stops and writes nothing", async () => {
    const { backend } = startWorker("a");
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    const queue = new Queue(queueName, { connection: { url: redisUrl }, prefix });
    const redis = new Redis(redisUrl);
    try {
      // A re-run of a job whose request already ended: there is no "still wanted" key.
      const job = scriptJob("echo:3");
      const keys = new FleetKeys(prefix);
      await redis.xadd(keys.inbox("gone"), "*", "hello", "1");
      await queue.add("completion", { v: 1, job, inbox: keys.inbox("gone"), inboxMaxLength: 100 }, { jobId: job.id, removeOnComplete: true });

      await waitFor("the queue drained", async () => (await queue.getJobCounts("wait", "active")).wait === 0 && (await queue.getActiveCount()) === 0);

      // The generation may start alongside the claim, but it is stopped and writes nothing.
      await waitFor("any started run to stop", () => backend.runs.every((run) => run.finished), 2000);
      expect(backend.runs.every((run) => run.signal.aborted)).toBe(true);
      expect(await redis.xlen(keys.inbox("gone"))).toBe(1);
    } finally {
      redis.disconnect();
      await queue.close();
    }
  });

  it("reports model states from worker heartbeats", async () => {
    startWorker("a");
    const dispatcher = await startDispatcher();
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);

    expect(await dispatcher.modelStates()).toEqual([{ id: TEST_MODEL, state: "ready" }]);
  });

  it("reports queue metrics: start and outcome of each job, and queue depth read from BullMQ", async () => {
    startWorker("a");
    const metrics = new RecordingMetrics();
    const dispatcher = await startDispatcher({ metrics });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);

    await collect(dispatcher.submit(scriptJob("echo:2")));
    await collect(dispatcher.submit(scriptJob("reject")));
    await collect(dispatcher.submit(scriptJob("echo:1", { model: "nobody-serves-this" })));
    const client = new AbortController();
    const cancelled = consume(dispatcher.submit(scriptJob("hang"), { signal: client.signal }));
    await cancelled.first;
    client.abort();
    await cancelled.all;

    expect(metrics.finished.map((entry) => entry.outcome)).toEqual(["completed", "rejected", "rejected", "cancelled"]);
    expect(metrics.started.map((entry) => entry.queue)).toEqual([queueName, queueName]);
    const depth = await metrics.depth();
    expect(depth).toEqual(expect.arrayContaining([{ queue: queueName, state: "waiting", count: 0 }]));
  });

  it("dates a job's start from when its worker accepted it, not from when the held accepted arrived", async () => {
    // The worker holds `accepted` for the first output, which comes after a 300 ms prefill.
    startWorker("a", { acceptedHoldMs: 1000 });
    const metrics = new RecordingMetrics();
    const dispatcher = await startDispatcher({ metrics });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);

    const started = performance.now();
    const events = await collect(dispatcher.submit(scriptJob("prefill:300:1")));
    const elapsedSeconds = (performance.now() - started) / 1000;

    expect(events.map((event) => event.type)).toEqual(["accepted", "text-delta", "finish"]);
    const [start] = metrics.started;
    const [finish] = metrics.finished;
    // The prefill counts as running, not waiting.
    expect(start!.waitSeconds).toBeLessThan(0.2);
    expect(finish!.runSeconds).toBeGreaterThan(0.25);
    expect(start!.waitSeconds + finish!.runSeconds).toBeLessThanOrEqual(elapsedSeconds + 0.01);
  });

  it("reads queue depth from BullMQ at scrape time, for the queues it was given and those it used", async () => {
    startWorker("a", { concurrencyPerModel: 1 });
    const metrics = new RecordingMetrics();
    const dispatcher = await startDispatcher({ metrics, queues: ["hf"] });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    const states = ["waiting", "active", "delayed", "prioritized", "paused"];
    expect(await metrics.depth()).toEqual(states.map((state) => ({ queue: "hf", state, count: 0 })));

    const client = new AbortController();
    const running = consume(dispatcher.submit(scriptJob("hang"), { signal: client.signal }));
    await running.first;
    const waiting = consume(dispatcher.submit(scriptJob("echo:1"), { signal: client.signal }));
    const queue = new Queue(queueName, { connection: { url: redisUrl }, prefix });
    try {
      await waitFor("one waiting job", async () => (await queue.getWaitingCount()) === 1);
      const depth = await metrics.depth();
      expect(depth.filter((sample) => sample.queue === queueName)).toEqual(
        states.map((state) => ({ queue: queueName, state, count: state === "waiting" || state === "active" ? 1 : 0 })),
      );
    } finally {
      client.abort();
      await Promise.all([running.all, waiting.all]);
      await queue.close();
    }
    // The running job was cancelled after it started, the waiting one before: both cancelled, one start.
    expect(metrics.finished.map((entry) => entry.outcome)).toEqual(["cancelled", "cancelled"]);
    expect(metrics.started).toHaveLength(1);

    // A paused queue's jobs wait without being taken: they count as paused.
    const paused = new Queue(queueName, { connection: { url: redisUrl }, prefix });
    const held = new AbortController();
    try {
      await paused.pause();
      const stream = consume(dispatcher.submit(scriptJob("echo:1"), { signal: held.signal }));
      await waitFor("the job added", async () => (await paused.getWaitingCount()) === 1);
      const depth = await metrics.depth();
      expect(depth.filter((sample) => sample.queue === queueName && sample.count > 0)).toEqual([{ queue: queueName, state: "paused", count: 1 }]);
      held.abort();
      await stream.all;
    } finally {
      held.abort();
      await paused.resume();
      await paused.close();
    }
  });

  it("counts a job that ends with an error after it started (its deadline) as completed, not failed", async () => {
    startWorker("a");
    const metrics = new RecordingMetrics();
    const dispatcher = await startDispatcher({ metrics });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);

    const timedOut = await collect(dispatcher.submit(scriptJob("hang", { deadlineAt: Date.now() + 500 })));

    expect(timedOut.at(-1)).toMatchObject({ type: "error", error: { code: "timeout" } });
    expect(metrics.finished.map((entry) => entry.outcome)).toEqual(["completed"]);
    expect(metrics.finished[0]!.runSeconds).toBeGreaterThan(0.3);
  });
});
