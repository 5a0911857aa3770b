/**
 * The backend with an artifact store: binary outputs leave as artifact
 * references (so jobs and events stay small across the queue), artifact
 * inputs are read from the store; plus the chat usage and readiness details
 * the gateway relies on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryArtifactStore } from "@switchboard/artifacts";
import { sniffMedia } from "@switchboard/hf-wire-server";
import { binaryOutputsOf, type ChatJob, type JobEvent, type TaskJob } from "@switchboard/protocol";
import { HfBackend } from "./hf-backend.js";
import { captureLogger, endpointId, hubModel, providerId, startWireFixture, type WireFixture } from "./test-support.js";

let fixture: WireFixture;
let backend: HfBackend;
const store = new MemoryArtifactStore({ ttlSeconds: 60, maxBytes: 1024 * 1024, maxTotalBytes: 8 * 1024 * 1024 });
const logger = captureLogger();
const context = () => ({ signal: new AbortController().signal, logger });

beforeAll(async () => {
  fixture = await startWireFixture();
  backend = new HfBackend({ settings: fixture.settings, models: fixture.models, logger, artifacts: store });
});
afterAll(async () => {
  await backend.close();
  await fixture?.server.close();
});

async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const all: JobEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const task = (extra: Partial<TaskJob>): TaskJob => ({ kind: "task", id: "t", requestId: "r", ...extra }) as TaskJob;

describe("with an artifact store", () => {
  it.each([
    ["text-to-image", "a lighthouse", "image"],
    ["text-to-speech", "hello", "audio"],
    ["text-to-video", "a lighthouse", "video"],
    ["image-segmentation", "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABc3UBGAAAAABJRU5ErkJggg==", "image"],
  ] as const)("%s answers with artifact references whose bytes are in the store", async (name, inputs, kind) => {
    const events = await collect(backend.run(task({ model: endpointId(name), task: name, inputs } as Partial<TaskJob>), context()));
    const result = events.find((event) => event.type === "task-result");
    expect(result, JSON.stringify(events)).toBeDefined();
    const binaries = binaryOutputsOf((result as { output: unknown }).output);
    expect(binaries.length).toBeGreaterThan(0);
    for (const binary of binaries) {
      expect(binary).toMatchObject({ type: "artifact", id: expect.stringMatching(/^[0-9a-f]{64}$/) });
      if (binary.type !== "artifact") continue;
      expect(binary.sha256).toBe(binary.id);
      const stored = await store.get(binary.id);
      expect(sniffMedia(Buffer.from(stored!.data))?.kind).toBe(kind);
      expect(stored!.mimeType).toBe(binary.mimeType);
    }
    // The event is small: no base64 inside.
    expect(JSON.stringify(result).length).toBeLessThan(2000);
  });

  it("reads artifact inputs from the store, and refuses an unknown one with a 400 before any upstream call", async () => {
    const made = await collect(backend.run(task({ model: providerId("text-to-image"), task: "text-to-image", inputs: "a cat" } as Partial<TaskJob>), context()));
    const image = (made.find((event) => event.type === "task-result") as { output: { image: { id: string } } }).output.image;
    const classified = await collect(backend.run(task({ model: providerId("image-classification"), task: "image-classification", inputs: { type: "artifact", id: image.id } } as Partial<TaskJob>), context()));
    expect(classified.map((event) => event.type)).toEqual(["accepted", "task-result"]);

    const before = fixture.server.requests.filter((request) => request.style !== "hub").length;
    const missing = await collect(
      backend.run(task({ model: providerId("image-classification"), task: "image-classification", inputs: { type: "artifact", id: "c".repeat(64) } } as Partial<TaskJob>), context()),
    );
    expect(missing).toEqual([{ type: "error", error: expect.objectContaining({ status: 400, code: "artifact_not_found", param: "inputs" }) }]);
    expect(fixture.server.requests.filter((request) => request.style !== "hub").length).toBe(before);
  });
});

describe("chat usage", () => {
  it("puts upstream prompt tokens on the finish event, since upstream usage comes last", async () => {
    const job: ChatJob = { kind: "chat", id: "c", requestId: "r", model: providerId("conversational"), messages: [{ role: "user", content: "hello" }], maxTokens: 32, sampling: {}, stop: [] };
    const events = await collect(backend.run(job, context()));
    expect(events[0]).toMatchObject({ type: "accepted", promptTokens: 0 });
    const promptTokens = Math.ceil(JSON.stringify([{ role: "user", content: "hello" }]).length / 4);
    expect(events.at(-1)).toMatchObject({ type: "finish", promptTokens, completionTokens: expect.any(Number) });
  });
});

describe("model states", () => {
  it("count a model that is loading upstream as ready here (it is served: 503 with Retry-After or a fallback), and an open circuit as failed", async () => {
    fixture.server.setBehaviour(hubModel("summarization", "p"), { fail: "503-loading", estimatedTime: 60, times: 1 });
    await collect(backend.run(task({ model: providerId("summarization"), task: "summarization", inputs: "a b c" } as Partial<TaskJob>), context()));
    expect(backend.engine.modelState(providerId("summarization")).state).toBe("loading");
    expect(backend.modelStates().find((state) => state.id === providerId("summarization"))?.state).toBe("ready");
  });
});
