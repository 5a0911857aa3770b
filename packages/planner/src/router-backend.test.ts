import { defaultRouterSettings, type LlamaModelConfig } from "@switchboard/catalog";
import { silentLogger, type JobEvent, type ModelState } from "@switchboard/protocol";
import { describe, expect, it } from "vitest";
import { RouterBackend } from "./router-backend.js";
import { MemoryRunStore } from "./run-store.js";

const planner: LlamaModelConfig = {
  id: "planner",
  aliases: [],
  backend: "llama",
  source: "generated:tiny",
  contextSize: 2048,
  sequences: 1,
  threads: 1,
  maxWaiting: 1,
  defaultMaxTokens: 16,
  maxTokens: 16,
  sampling: {},
  embeddings: false,
};

/** The router's first event when its planner is in `state`; no job is ever submitted. */
async function firstEvent(state: ModelState | undefined): Promise<JobEvent> {
  const router = new RouterBackend({
    config: { models: [planner], router: defaultRouterSettings("planner") },
    submit: () => {
      throw new Error("no job may be submitted while the planner is not ready");
    },
    modelStates: async () => (state ? [state] : []),
    runs: new MemoryRunStore({ ttlSeconds: 60 }),
  });
  const job = { kind: "orchestration" as const, id: "run_1", requestId: "r", model: "router", messages: [{ role: "user" as const, content: "hi" }] };
  for await (const event of router.run(job, { signal: new AbortController().signal, logger: silentLogger })) return event;
  throw new Error("no event");
}

describe("RouterBackend before a run", () => {
  it("answers 503 with a short Retry-After while the planner downloads, saying how far it got", async () => {
    const event = await firstEvent({ id: "planner", state: "downloading", progress: 0.4 });
    expect(event).toMatchObject({ type: "error", error: { status: 503, code: "model_unavailable", retryAfterSeconds: 5 } });
    expect(event.type === "error" && event.error.message).toMatch(/planner 'planner' is not available: it is downloading \(40%\)/);
  });

  it("answers 503 without Retry-After when the planner failed to load: waiting will not help", async () => {
    const event = await firstEvent({ id: "planner", state: "failed", error: "bad file" });
    expect(event).toMatchObject({ type: "error", error: { status: 503, code: "model_unavailable" } });
    expect(event.type === "error" && event.error.retryAfterSeconds).toBeFalsy();
    expect(event.type === "error" && event.error.message).toMatch(/it failed to load: bad file\. Retry later, or set router\.planner/);
  });

  it("names the missing worker when no process serves the planner", async () => {
    const event = await firstEvent(undefined);
    expect(event.type === "error" && event.error.message).toMatch(/no worker serves it now/);
  });
});
