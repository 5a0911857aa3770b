/**
 * The router in fleet mode on the real Redis: a gateway with no engine, a
 * router worker, a llama worker (the generated tiny model plans, selects and
 * answers) and an hf worker (specialists on the local wire-format server), all
 * sharing one Redis under a random prefix (only those keys are deleted
 * afterwards). The router's LLM calls and tasks travel as jobs to the other
 * workers; run records are written to Redis by the router and read by the
 * gateway.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type SwitchboardConfig } from "@switchboard/catalog";
import { createFleetGateway, type FleetGateway } from "@switchboard/gateway/fleet";
import { TEST_PNG, startHfWireServer, type WireServer } from "@switchboard/hf-wire-server";
import { parseExposition, promtoolCheck, requireProgram, sampleSum } from "@switchboard/metrics/testing";
import { HF_QUEUE, ROUTER_QUEUE, llamaQueueName } from "@switchboard/queue";
import { deletePrefix, randomPrefix, redisUrl, waitForLiveWorkers, waitForReady } from "@switchboard/queue/test/redis-fixture";
import { startHfWorker, type HfWorker } from "@switchboard/worker-hf";
import { startLlamaWorker, type LlamaWorker } from "@switchboard/worker-llama";
import OpenAI from "openai";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRouterWorker, type RouterWorker } from "../src/router-worker.js";

const prefix = randomPrefix();
const PLANNER = "planner-tiny";
const logLines: string[] = [];
const logger = pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });
const transport = { heartbeatIntervalMs: 100, heartbeatTtlMs: 3000, drainTimeoutMs: 1000 };

let modelsDir: string;
let wire: WireServer;
let config: SwitchboardConfig;
let llama: LlamaWorker;
let hf: HfWorker;
let router: RouterWorker;
let gateway: FleetGateway;
let baseURL: string;

beforeAll(async () => {
  requireProgram("promtool");
  modelsDir = mkdtempSync(join(tmpdir(), "switchboard-router-fleet-"));
  wire = await startHfWireServer({ models: { "acme/captioner": "image-to-text", "acme/detector": "object-detection", "acme/speaker": "text-to-speech" } });
  config = parseConfig(
    {
      server: { host: "127.0.0.1", port: 0, logLevel: "debug" },
      modelsDir,
      models: [
        { id: PLANNER, backend: "llama", source: "generated:tiny", contextSize: 4096, sequences: 4, defaultMaxTokens: 32 },
        ...[
          ["captioner", "image-to-text"],
          ["detector", "object-detection"],
          ["speaker", "text-to-speech"],
        ].map(([id, task]) => ({ id, backend: "hf", model: `acme/${id}`, task, endpointUrl: `${wire.endpointBase}/acme/${id}`, timeoutMs: 5000 })),
      ],
      huggingface: { baseUrl: wire.url, hubUrl: wire.url, retries: 0 },
      router: { planner: PLANNER, maxTasks: 3, concurrency: 4 },
    },
    { env: {}, baseDir: modelsDir },
  );
  const common = { config, redisUrl, prefix, port: 0, host: "127.0.0.1", transport };
  [llama, hf, router] = await Promise.all([
    startLlamaWorker({ ...common, workerId: "fleet-llama", logger: logger.child({ process: "worker-llama" }) }),
    startHfWorker({ ...common, workerId: "fleet-hf", logger: logger.child({ process: "worker-hf" }) }),
    startRouterWorker({
      ...common,
      workerId: "fleet-router",
      logger: logger.child({ process: "router" }),
      orchestration: { literalMaxLength: 24, responder: { maxTokens: 24 }, selector: { maxTokens: 64 } },
    }),
  ]);
  gateway = await createFleetGateway({ config, redisUrl, prefix, logger: logger.child({ process: "gateway" }) });
  baseURL = await gateway.app.listen({ port: 0, host: "127.0.0.1" });
  await waitForLiveWorkers(redisUrl, prefix, [ROUTER_QUEUE, HF_QUEUE, llamaQueueName(PLANNER)]);
  await waitForReady([gateway.dispatcher, router.dispatcher]);
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await router?.close();
  await Promise.all([llama?.close(), hf?.close()]);
  await wire?.close();
  await deletePrefix(redisUrl, prefix);
  rmSync(modelsDir, { recursive: true, force: true });
});

/** A JSON body as tests read it. */
const json = async (response: Response): Promise<any> => response.json();

const imageMessage = (text: string) => [
  { role: "user" as const, content: [{ type: "text" as const, text }, { type: "image_url" as const, image_url: { url: `data:image/png;base64,${TEST_PNG.toString("base64")}` } }] },
];

describe("the router in fleet mode", () => {
  it("runs a chat on the router worker: the planner on the llama worker, the tasks on the hf worker, the record read by the gateway", { timeout: 90_000 }, async () => {
    const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "unused", maxRetries: 0 });
    expect((await client.models.list()).data.map((model) => model.id)).toContain("router");
    const stream = await client.chat.completions.create({ model: "router", messages: imageMessage("Describe this picture and read it aloud."), stream: true }, { headers: { "x-request-id": "fleet-router-run" } });
    let runId = "";
    let answer = "";
    for await (const chunk of stream) {
      runId ||= (chunk as unknown as { switchboard?: { progress: { runId: string } } }).switchboard?.progress.runId ?? "";
      answer += chunk.choices[0]?.delta.content ?? "";
    }
    expect(answer.length).toBeGreaterThan(0);

    const record = await json(await fetch(`${baseURL}/v1/orchestrations/${runId}`));
    expect(record).toMatchObject({ id: runId, requestId: "fleet-router-run", status: "completed", planner: { source: "local", model: PLANNER } });
    expect(record.plan.length).toBeGreaterThan(0);
    expect(record.tasks.every((task: { status: string }) => task.status === "succeeded")).toBe(true);
    // The LLM calls ran as jobs on the llama worker, whose logs carry the request id and the run's job ids.
    const llamaJobs = logLines.map((line) => JSON.parse(line)).filter((line) => line.process === "worker-llama" && line.requestId === "fleet-router-run");
    expect(llamaJobs.some((line) => String(line.jobId).startsWith(`${runId}-plan-`))).toBe(true);
    expect(llamaJobs.some((line) => line.jobId === `${runId}-respond`)).toBe(true);
    // Each task ran on the hf worker: its upstream calls are counted there.
    const hfSamples = parseExposition(await (await fetch(`${hf.url}/metrics`)).text());
    expect(sampleSum(hfSamples, "switchboard_hf_upstream_request_duration_seconds_count", {})).toBe(record.plan.length);
    expect(wire.violations()).toEqual([]);

    // The router worker's /metrics passes promtool and counted the run and its stages.
    const metricsText = await (await fetch(`${router.url}/metrics`)).text();
    expect(promtoolCheck(metricsText)).toMatchObject({ ok: true });
    const samples = parseExposition(metricsText);
    expect(sampleSum(samples, "switchboard_router_run_duration_seconds_count", { status: "completed" })).toBe(1);
    for (const stage of ["plan", "select", "execute", "respond"]) expect(sampleSum(samples, "switchboard_router_stage_duration_seconds_count", { stage, outcome: "ok" })).toBe(1);
    expect(sampleSum(samples, "switchboard_router_tasks_total", { backend: "hf", status: "succeeded" })).toBe(record.plan.length);
  });

  it("runs independent tasks of a client plan at the same time on the worker", { timeout: 60_000 }, async () => {
    wire.setBehaviour("acme/captioner", { fail: "slow", delayMs: 400 });
    wire.setBehaviour("acme/detector", { fail: "slow", delayMs: 400 });
    const response = await fetch(`${baseURL}/v1/orchestrations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        messages: imageMessage("Caption and detect."),
        plan: [
          { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
          { id: 1, task: "object-detection", dep: [-1], args: { image: "<INPUT>-0" } },
        ],
      }),
    });
    const run = await json(response);
    expect(run.status).toBe("completed");
    const [caption, detection] = run.tasks;
    expect(detection.startedAt).toBeLessThan(caption.finishedAt);
    expect(caption.startedAt).toBeLessThan(detection.finishedAt);
    wire.reset();
  });

  it("answers a bad client plan with a 400 from the router worker, naming the node", async () => {
    const response = await fetch(`${baseURL}/v1/orchestrations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "x" }], plan: [{ id: 0, task: "image-to-text", dep: [-1], args: { image: "<GENERATED>-0" } }] }),
    });
    expect(response.status).toBe(400);
    expect((await json(response)).error.param).toMatch(/^plan\[0\]\.args\.image$/);
  });
});
