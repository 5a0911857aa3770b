/**
 * The llama worker app: refuses to start without REDIS_URL, and serves the
 * generated test model's queue on the real Redis with the real llama engine.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig, TEST_MODEL_ID } from "@switchboard/catalog";
import { parseExposition, promtoolCheck, requireProgram, sampleSum } from "@switchboard/metrics/testing";
import { silentLogger, type JobEvent } from "@switchboard/protocol";
import { BullmqDispatcher, llamaQueueName } from "@switchboard/queue";
import { deletePrefix, waitForLiveWorkers, waitForReady } from "@switchboard/queue/test/redis-fixture";
import { startLlamaWorker, type LlamaWorker } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..", "..");
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

describe("worker-llama main", () => {
  it("refuses to start without REDIS_URL and says so", () => {
    const env = { ...process.env };
    delete env.REDIS_URL;
    const result = spawnSync(process.execPath, ["--import", "tsx", join(here, "..", "src", "main.ts")], { cwd: repoRoot, env, encoding: "utf8", timeout: 20_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("REDIS_URL is not set");
  });
});

describe("llama worker on Redis", () => {
  const prefix = `sbtest-${Math.random().toString(36).slice(2, 12)}`;
  let modelsDir: string;
  let worker: LlamaWorker;
  let dispatcher: BullmqDispatcher;

  beforeAll(async () => {
    modelsDir = await mkdtemp(join(tmpdir(), "sb-worker-llama-"));
    const config = parseConfig(
      { modelsDir, models: [{ id: TEST_MODEL_ID, backend: "llama", source: "generated:tiny", contextSize: 1024, sequences: 2 }] },
      { env: {}, baseDir: modelsDir },
    );
    worker = await startLlamaWorker({ config, redisUrl, prefix, port: 0, host: "127.0.0.1", logger: silentLogger, transport: { heartbeatIntervalMs: 200 } });
    dispatcher = new BullmqDispatcher({ connection: redisUrl, prefix });
    // The model is generated and loaded first: on a busy machine that takes a while.
    await waitForLiveWorkers(redisUrl, prefix, [llamaQueueName(TEST_MODEL_ID)]);
    await waitForReady([dispatcher]);
  });

  afterAll(async () => {
    await dispatcher?.close();
    await worker?.close();
    // Only this test's own keys, found by prefix.
    await deletePrefix(redisUrl, prefix);
    await rm(modelsDir, { recursive: true, force: true });
  });

  it("serves a completion from the generated model through the queue", async () => {
    const events: JobEvent[] = [];
    for await (const event of dispatcher.submit({
      kind: "completion",
      id: "job-worker-llama-1",
      requestId: "request-1",
      model: TEST_MODEL_ID,
      prompts: ["Once upon a time"],
      maxTokens: 8,
      sampling: { temperature: 0 },
      stop: [],
    })) {
      events.push(event);
    }

    expect(events[0]).toMatchObject({ type: "accepted", model: TEST_MODEL_ID, worker: worker.server.workerId });
    expect(events.some((event) => event.type === "text-delta")).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: "finish", index: 0 });
  });

  it("answers /health, /ready and /metrics on its own port", async () => {
    const health = await fetch(`${worker.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", models: [{ id: TEST_MODEL_ID, state: "ready" }] });
    expect((await fetch(`${worker.url}/ready`)).status).toBe(200);
    const metrics = await fetch(`${worker.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("process_cpu_user_seconds_total");
  });

  it("reports the model's load, its sequences and the job's tokens at /metrics, in a text promtool accepts", async () => {
    requireProgram("promtool");
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    const exposition = parseExposition(text);

    expect(sampleSum(exposition, "switchboard_llama_model_load_seconds_count", { model: TEST_MODEL_ID, outcome: "ok" })).toBe(1);
    expect(sampleSum(exposition, "switchboard_llama_sequences", { model: TEST_MODEL_ID })).toBe(2);
    expect(sampleSum(exposition, "switchboard_llama_sequences", { model: TEST_MODEL_ID, state: "idle" })).toBe(2);
    // The one completion above: its prompt and output tokens, one completed job.
    expect(sampleSum(exposition, "switchboard_worker_job_duration_seconds_count", { model: TEST_MODEL_ID, outcome: "completed" })).toBe(1);
    expect(sampleSum(exposition, "switchboard_worker_tokens_total", { model: TEST_MODEL_ID, type: "input" })).toBeGreaterThan(0);
    expect(sampleSum(exposition, "switchboard_worker_tokens_total", { model: TEST_MODEL_ID, type: "output" })).toBeGreaterThan(0);
    expect(sampleSum(exposition, "switchboard_worker_tokens_total", { model: TEST_MODEL_ID, type: "output" })).toBeLessThanOrEqual(8);
    const lint = promtoolCheck(text);
    expect(lint.output).toBe("");
    expect(lint.ok).toBe(true);
  });

  it("reports its models through the dispatcher's modelStates", async () => {
    expect(await dispatcher.modelStates()).toEqual([expect.objectContaining({ id: TEST_MODEL_ID, state: "ready" })]);
  });
});
