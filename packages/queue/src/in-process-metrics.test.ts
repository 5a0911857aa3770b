/**
 * What the in-process transport tells its QueueMetrics: wait until the first
 * event, run until the last, the outcome, and depth by queue and state while
 * jobs wait and run. A recording QueueMetrics stands in for prom-client.
 */
import { describe, expect, it } from "vitest";
import type { Backend, Job, JobEvent } from "@switchboard/protocol";
import { InProcessDispatcher } from "./in-process.js";
import type { QueueDepthSample, QueueMetrics } from "./queue-metrics.js";

class RecordingMetrics implements QueueMetrics {
  readonly calls: string[] = [];
  readonly waits: number[] = [];
  #depth: (() => readonly QueueDepthSample[] | Promise<readonly QueueDepthSample[]>) | undefined;
  jobStarted(queue: string, waitSeconds: number): void {
    this.calls.push(`started ${queue}`);
    this.waits.push(waitSeconds);
  }
  jobFinished(queue: string, outcome: string): void {
    this.calls.push(`${outcome} ${queue}`);
  }
  jobRetried(queue: string): void {
    this.calls.push(`retried ${queue}`);
  }
  jobStalled(queue: string): void {
    this.calls.push(`stalled ${queue}`);
  }
  queueServed(queue: string): void {
    this.calls.push(`served ${queue}`);
  }
  watchDepth(read: () => readonly QueueDepthSample[] | Promise<readonly QueueDepthSample[]>): () => void {
    this.#depth = read;
    return () => (this.#depth = undefined);
  }
  async depth(): Promise<Record<string, number>> {
    const samples = (await this.#depth?.()) ?? [];
    return Object.fromEntries(samples.filter((sample) => sample.count > 0).map((sample) => [`${sample.queue} ${sample.state}`, sample.count]));
  }
}

const job = (model: string, id = "job"): Job => ({ kind: "chat", id, requestId: "request", model, messages: [{ role: "user", content: "hi" }], maxTokens: 4, sampling: {}, stop: [] });

/** A backend whose events for each job come from a script the test controls. */
function backend(name: string, models: string[], script: (job: Job) => AsyncIterable<JobEvent>): Backend {
  return { name, models: () => models, modelStates: () => [], run: (job) => script(job), close: async () => {} };
}

async function readAll(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const seen: JobEvent[] = [];
  for await (const event of events) seen.push(event);
  return seen;
}

describe("InProcessDispatcher queue metrics", () => {
  it("names queues as the fleet does and records wait, outcomes and depth", async () => {
    const metrics = new RecordingMetrics();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const llama = backend("llama", ["org/m:q4"], async function* (job) {
      await gate; // waiting for a sequence
      yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 3 };
      yield { type: "finish", index: 0, finishReason: "stop", completionTokens: 1 };
    });
    const hf = backend("hf", ["remote"], async function* () {
      yield { type: "error", error: { message: "busy", type: "rate_limit_error", param: null, code: "rate_limited", status: 429 } };
    });
    const dispatcher = new InProcessDispatcher({ backends: [llama, hf], metrics });

    const pending = readAll(dispatcher.submit(job("org/m:q4")));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await metrics.depth()).toEqual({ "llama.org%2Fm%3Aq4 waiting": 1 });
    release();
    await pending;
    expect(await metrics.depth()).toEqual({});
    expect(metrics.waits[0]).toBeGreaterThanOrEqual(0.015);

    await readAll(dispatcher.submit(job("remote")));
    expect(metrics.calls).toEqual(["started llama.org%2Fm%3Aq4", "completed llama.org%2Fm%3Aq4", "rejected hf"]);
    await dispatcher.close();
    expect(await metrics.depth()).toEqual({});
  });

  it("an in-band error after the start still completes the job; a reader that stops early cancels it; a backend that throws fails it", async () => {
    const metrics = new RecordingMetrics();
    const dispatcher = new InProcessDispatcher({
      metrics,
      backends: [
        backend("llama", ["m"], async function* (job) {
          yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 3 };
          yield { type: "text-delta", index: 0, text: "a" };
          if (job.id === "fails") yield { type: "error", error: { message: "boom", type: "server_error", param: null, code: "internal_error", status: 500 } };
          else if (job.id === "throws") throw new Error("bug");
          else yield { type: "text-delta", index: 0, text: "b" };
        }),
      ],
    });
    await readAll(dispatcher.submit(job("m", "fails")));
    for await (const event of dispatcher.submit(job("m", "stops"))) if (event.type === "text-delta") break;
    // The transport still answers a throw with an error event.
    expect((await readAll(dispatcher.submit(job("m", "throws")))).at(-1)?.type).toBe("error");
    expect(metrics.calls).toEqual(["started llama.m", "completed llama.m", "started llama.m", "cancelled llama.m", "started llama.m", "failed llama.m"]);
    expect(await metrics.depth()).toEqual({});
  });

  it("records nothing without metrics", async () => {
    const dispatcher = new InProcessDispatcher({
      backends: [backend("llama", ["m"], async function* (job) {
        yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 1 };
      })],
    });
    expect((await readAll(dispatcher.submit(job("m")))).map((event) => event.type)).toEqual(["accepted"]);
  });
});
