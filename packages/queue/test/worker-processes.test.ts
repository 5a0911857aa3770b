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
import { exited, forkWorker } from "./worker-processes.js";

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
    const [a] = await Promise.all([fork("a", 2), fork("b", 2)]);
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
    expect(metrics.retried).toEqual([queueName, queueName]);
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

  it("on SIGTERM cancels a job that outlasts the drain timeout with a final error event", async () => {
    const child = await fork("a", 1, { drainTimeoutMs: 300 });
    await waitForLiveWorkers(redisUrl, prefix, queueName, 1);
    const stream = consume(dispatcher.submit(scriptJob("hang")));
    expect(await stream.first).toMatchObject({ type: "accepted" });

    child.kill("SIGTERM");
    const events = await stream.all;

    expect(events.at(-1)).toMatchObject({ type: "error", error: { status: 503, code: "worker_shutting_down" } });
    expect(await exited(child)).toEqual({ code: 0, signal: null });
  });
});
