/**
 * Worker processes that die or are told to stop: real child processes serving
 * the scripted backend, SIGKILLed or SIGTERMed while jobs run.
 */
import type { ChildProcess } from "node:child_process";
import type { JobEvent } from "@switchboard/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BullmqDispatcher, llamaQueueName } from "../src/index.js";
import { dispatcherTimings, workerTimings } from "./fleet-timings.js";
import { consume, waitFor, waitForLiveWorkers } from "./helpers.js";
import { TEST_MODEL, collect, errorOf, scriptJob, textOf } from "./jobs.js";
import { deletePrefix, randomPrefix, redisUrl } from "./redis-fixture.js";
import { RecordingMetrics } from "./recording-metrics.js";
import { exited, forkWorker, workerMetrics } from "./worker-processes.js";

const queueName = llamaQueueName(TEST_MODEL);

/** The tags of the attempts whose text reached the client (deltas look like `<tag>t<n> `). */
function outputTags(events: JobEvent[]): Set<string> {
  return new Set(events.flatMap((event) => (event.type === "text-delta" ? [event.text.split("t")[0]!] : [])));
}

function workerOf(events: JobEvent[]): string | undefined {
  return events[0]?.type === "accepted" ? events[0].worker : undefined;
}

describe("worker processes that die or stop", () => {
  let prefix: string;
  let dispatcher: BullmqDispatcher;
  let children: ChildProcess[];
  let metrics: RecordingMetrics;

  beforeEach(async () => {
    prefix = randomPrefix();
    children = [];
    metrics = new RecordingMetrics();
    dispatcher = new BullmqDispatcher({ connection: redisUrl, prefix, metrics, ...dispatcherTimings });
    await waitFor("dispatcher ready", () => dispatcher.ready());
  });

  afterEach(async () => {
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(children.map(exited));
    await dispatcher.close();
    await deletePrefix(redisUrl, prefix);
  });

  async function fork(tag: string, concurrency: number, options = {}) {
    const child = await forkWorker({ redisUrl, prefix, tag, concurrency, options: { ...workerTimings, ...options } });
    children.push(child);
    return child;
  }

  it("re-runs the jobs of a worker killed before any output on the other worker, from one attempt only", async () => {
    const [a, b] = await Promise.all([fork("a", 2), fork("b", 2)]);
    await waitForLiveWorkers(redisUrl, prefix, queueName, 2);
    const streams = Array.from({ length: 4 }, () => consume(dispatcher.submit(scriptJob("prefill:1500:5"))));
    const firsts = await Promise.all(streams.map((stream) => stream.first));
    expect(firsts.map((event) => event?.type)).toEqual(["accepted", "accepted", "accepted", "accepted"]);

    a!.kill("SIGKILL");
    const results = await Promise.all(streams.map((stream) => stream.all));

    const onA = results.filter((events) => workerOf(events) === "worker-a");
    expect(onA).toHaveLength(2);
    for (const events of results) {
      expect(events.at(-1)).toMatchObject({ type: "finish", completionTokens: 5 });
      expect(outputTags(events)).toEqual(new Set(["b"]));
      expect(events.filter((event) => event.type === "accepted")).toHaveLength(1);
      expect(textOf(events)).toBe("bt0 bt1 bt2 bt3 bt4 ");
    }
    // The survivor's stalled-job check found A's two jobs and ran them again; the gateway saw four jobs complete.
    expect(await workerMetrics(b!)).toEqual({ retried: [queueName, queueName], stalled: [queueName, queueName] });
    expect(metrics.finished.map((entry) => entry.outcome)).toEqual(["completed", "completed", "completed", "completed"]);
    expect(metrics.started).toHaveLength(4);
  });

  it("ends with an error the streams of a worker killed mid-generation, never mixing attempts", async () => {
    const [a] = await Promise.all([fork("a", 2), fork("b", 2)]);
    await waitForLiveWorkers(redisUrl, prefix, queueName, 2);
    const streams = Array.from({ length: 4 }, () => consume(dispatcher.submit(scriptJob("slow:40:40"))));
    await Promise.all(streams.map((stream) => stream.first));
    await new Promise((resolve) => setTimeout(resolve, 300));

    const killedAt = Date.now();
    a!.kill("SIGKILL");
    const results = await Promise.all(streams.map((stream) => stream.all));

    for (const events of results) {
      const tags = outputTags(events);
      expect(tags.size).toBe(1);
      if (workerOf(events) === "worker-a") {
        expect(tags).toEqual(new Set(["a"]));
        expect(errorOf(events)).toMatchObject({ status: 502, code: "worker_lost" });
        expect(events.at(-1)?.type).toBe("error");
      } else {
        expect(events.at(-1)).toMatchObject({ type: "finish", completionTokens: 40 });
      }
    }
    expect(results.filter((events) => workerOf(events) === "worker-a")).toHaveLength(2);
    // Detected from the heartbeat TTL, not from a timeout.
    expect(Date.now() - killedAt).toBeLessThan(3000);
    expect(metrics.finished.map((entry) => entry.outcome).sort()).toEqual(["completed", "completed", "failed", "failed"]);
  });

  it("drains on SIGTERM: the running job finishes, the process exits 0, and the model is then unavailable", async () => {
    const child = await fork("a", 1, { drainTimeoutMs: 5000 });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    // Silent for longer than the heartbeat TTL: a draining worker must still count as alive.
    const stream = consume(dispatcher.submit(scriptJob("prefill:1500:5")));
    expect(await stream.first).toMatchObject({ type: "accepted" });

    child.kill("SIGTERM");
    const events = await stream.all;

    expect(events.at(-1)).toMatchObject({ type: "finish", completionTokens: 5 });
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    const after = await collect(dispatcher.submit(scriptJob("echo:1")));
    expect(errorOf(after)).toMatchObject({ status: 503, code: "model_unavailable" });
  });

  it("on SIGTERM ends a job whose output already went out and that outlasts the drain timeout with a final error event", async () => {
    const [a, b] = await Promise.all([fork("a", 1, { drainTimeoutMs: 300 }), fork("b", 1, { drainTimeoutMs: 300 })]);
    await waitForLiveWorkers(redisUrl, prefix, queueName, 2);
    const stream = consume(dispatcher.submit(scriptJob("slow:50:200")));
    const first = await stream.first;
    // A delta every 50 ms: by now output has reached the client.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const running = first?.type === "accepted" && first.worker === "worker-b" ? b! : a!;
    running.kill("SIGTERM");
    const events = await stream.all;

    expect(textOf(events).length).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ type: "error", error: { status: 503, code: "worker_shutting_down" } });
    expect(await exited(running)).toEqual({ code: 0, signal: null });
    expect(metrics.finished.map((entry) => entry.outcome)).toEqual(["failed"]);
  });

  it("on SIGTERM hands a job with no output yet back to its queue: another worker gives the whole answer, once", async () => {
    const [a, b] = await Promise.all([fork("a", 1, { drainTimeoutMs: 300 }), fork("b", 1, { drainTimeoutMs: 300 })]);
    await waitForLiveWorkers(redisUrl, prefix, queueName, 2);
    // Accepted at once, then silent for 1.5 s: the drain timeout falls before any output.
    const stream = consume(dispatcher.submit(scriptJob("prefill:1500:5")));
    const first = await stream.first;
    expect(first).toMatchObject({ type: "accepted" });
    const [leaving, staying, other] = first?.type === "accepted" && first.worker === "worker-b" ? [b!, a!, "a"] : [a!, b!, "b"];

    leaving.kill("SIGTERM");
    const events = await stream.all;

    expect(events.filter((event) => event.type === "error")).toEqual([]);
    expect(events.filter((event) => event.type === "accepted")).toHaveLength(1);
    expect(textOf(events)).toBe(`${other}t0 ${other}t1 ${other}t2 ${other}t3 ${other}t4 `);
    expect(events.at(-1)).toMatchObject({ type: "finish", completionTokens: 5 });
    expect(await exited(leaving)).toEqual({ code: 0, signal: null });
    expect(await workerMetrics(staying)).toEqual({ retried: [queueName], stalled: [] });
    expect(metrics.finished.map((entry) => entry.outcome)).toEqual(["completed"]);
  });
  it("on SIGTERM the only worker hands its job back; the worker that replaces it gives the whole answer (a rolling restart)", async () => {
    const a = await fork("a", 1, { drainTimeoutMs: 300 });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    const stream = consume(dispatcher.submit(scriptJob("prefill:1500:5")));
    expect(await stream.first).toMatchObject({ type: "accepted", worker: "worker-a" });

    a.kill("SIGTERM");
    expect(await exited(a)).toEqual({ code: 0, signal: null });
    // The queue has no worker now; the job waits for the next one instead of failing.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await fork("b", 1);
    const events = await stream.all;

    expect(events.filter((event) => event.type === "error")).toEqual([]);
    expect(textOf(events)).toBe("bt0 bt1 bt2 bt3 bt4 ");
    expect(events.at(-1)).toMatchObject({ type: "finish", completionTokens: 5 });
    expect(metrics.finished.map((entry) => entry.outcome)).toEqual(["completed"]);
  });

  it("ends a job with 503 model_unavailable once its queue has had no worker for the grace period", async () => {
    const impatient = new BullmqDispatcher({ connection: redisUrl, prefix, ...dispatcherTimings, workerlessGraceMs: 600 });
    try {
      await waitFor("dispatcher ready", () => impatient.ready());
      const a = await fork("a", 1, { drainTimeoutMs: 300 });
      await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
      const stream = consume(impatient.submit(scriptJob("prefill:1500:5")));
      expect(await stream.first).toMatchObject({ type: "accepted" });

      a.kill("SIGTERM");
      await exited(a);
      const workerlessAt = Date.now();
      const events = await stream.all;

      expect(errorOf(events)).toMatchObject({ status: 503, code: "model_unavailable", retryAfterSeconds: 2 });
      expect(Date.now() - workerlessAt).toBeGreaterThanOrEqual(500);
      expect(textOf(events)).toBe("");
    } finally {
      await impatient.close();
    }
  });
});
