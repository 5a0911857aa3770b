/**
 * Observability of the embedded server, end to end on real pieces: the
 * gateway, the llama engine with the generated tiny model, the Hugging Face
 * engine against the local wire-format server, and real router runs (the
 * planner package's loop over the same in-process dispatcher). Checked with
 * real tools: `promtool check metrics`, a real Prometheus scraping the gateway
 * every second (every query of the Grafana dashboard is run through its HTTP
 * API), and the console opened in headless Chromium.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium } from "playwright-core";
import { parseConfig, type SwitchboardConfig } from "@switchboard/catalog";
import type { ConsoleRunRecord, RecentRunsProvider } from "@switchboard/gateway";
import { startHfWireServer, type WireServer } from "@switchboard/hf-wire-server";
import { parseExposition, promtoolCheck, requireProgram, sampleSum, seriesCount, type Exposition } from "@switchboard/metrics/testing";
import { createJobExecutor, runOrchestration, type CatalogCandidate, type CatalogView, type ChatLlm, type RunRecord } from "@switchboard/planner";
import { createEmbeddedServer, type EmbeddedServer } from "../src/embedded.js";
import { captureLog, dashboardQueries, startPrometheus, type CapturedLog, type PrometheusServer } from "./observability-support.js";

const KEY = "sk-observability-test";
const TINY = "obs-tiny";
const repoRoot = join(import.meta.dirname, "..", "..", "..");
const dashboard = JSON.parse(readFileSync(join(repoRoot, "deploy/grafana/dashboards/switchboard.json"), "utf8")) as Parameters<typeof dashboardQueries>[0];

/**
 * Dashboard queries whose data cannot exist in this test, and why. Each one is
 * still run and must be a valid query; it must come back empty, so that a
 * change which makes the data appear also updates this list.
 */
const NO_DATA_HERE: Record<string, string> = {
  switchboard_queue_jobs_retried_total: "the in-process transport never re-runs a job; the BullMQ transport records retries (fleet mode)",
  switchboard_queue_jobs_stalled_total: "only BullMQ jobs stall (a worker that stops renewing its lock); the in-process transport has no locks",
};

let wire: WireServer;
let server: EmbeddedServer;
let baseURL: string;
let log: CapturedLog;
let prometheus: PrometheusServer;
let modelsDir: string;
const runs: RunRecord[] = [];
const recentRuns: RecentRunsProvider = {
  list: (limit) => [...runs].reverse().slice(0, limit) as unknown as ConsoleRunRecord[],
  get: (id) => runs.find((run) => run.id === id) as unknown as ConsoleRunRecord | undefined,
};

const authorized = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

async function metricsNow(): Promise<Exposition> {
  return parseExposition(await (await fetch(`${baseURL}/metrics`)).text());
}

async function chat(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${baseURL}/v1/chat/completions`, { method: "POST", headers: { ...authorized, ...headers }, body: JSON.stringify({ model: TINY, ...body }) });
}

/** Reads an SSE chat stream; returns the usage chunk. */
async function streamedUsage(response: Response): Promise<{ prompt_tokens: number; completion_tokens: number }> {
  const text = await response.text();
  const chunks = text
    .split("\n")
    .filter((line) => line.startsWith("data: {"))
    .map((line) => JSON.parse(line.slice(6)) as { usage?: { prompt_tokens: number; completion_tokens: number } });
  const usage = chunks.find((chunk) => chunk.usage)?.usage;
  if (!usage) throw new Error(`no usage in stream: ${text.slice(0, 300)}`);
  return usage;
}

function testConfig(): SwitchboardConfig {
  return parseConfig(
    {
      server: { port: 0, host: "127.0.0.1", logLevel: "debug", bodyLimitBytes: 64 * 1024 },
      apiKeys: [KEY],
      modelsDir,
      models: [
        { id: TINY, backend: "llama", source: "generated:tiny", contextSize: 1024, sequences: 2, maxWaiting: 1, defaultMaxTokens: 16, maxTokens: 256 },
        // Provider style (Hub lookup, then the router address) and endpoint style, so both provider labels appear.
        { id: "obs-summarizer", backend: "hf", model: "acme/summarizer", task: "summarization", downloads: 1000 },
        { id: "obs-translator", backend: "hf", model: "acme/translator", task: "translation", endpointUrl: `${wire.endpointBase}/acme/translator`, sendToken: true },
        { id: "obs-classifier", backend: "hf", model: "acme/classifier", task: "text-classification" },
        { id: "obs-chat", backend: "hf", model: "acme/chat", task: "conversational", endpointUrl: `${wire.endpointBase}/acme/chat`, sendToken: true },
      ],
      huggingface: { baseUrl: wire.url, hubUrl: wire.url, token: "hf_ObservabilityTestToken0123456789", retries: 1, backoffBaseMs: 1, backoffMaxMs: 5, circuitFailureThreshold: 2, circuitCoolDownMs: 600_000 },
    },
    { env: {}, baseDir: modelsDir },
  );
}

/** The catalog as the router sees it: remote models by task, the tiny model for text generation. */
function catalogView(config: SwitchboardConfig): CatalogView {
  const candidates: CatalogCandidate[] = config.models.flatMap((model): CatalogCandidate[] =>
    model.backend === "hf"
      ? [{ id: model.id, task: model.task, backend: "hf", local: false, circuit: server.hfBackend!.engine.breaker.state(model.id) }]
      : [{ id: model.id, task: "text-generation", backend: "llama", local: true }],
  );
  return { candidates: (task) => candidates.filter((candidate) => candidate.task === task) };
}

function llmOn(model: string, grammarEnforced: boolean): ChatLlm {
  return { model, grammarEnforced, submit: (job, options) => server.dispatcher.submit(job, options) };
}

/** The four-task run with a client plan (one task fails upstream); run once, by whichever test needs it first. */
let fourTaskRecord: Promise<RunRecord> | undefined;
function fourTaskRun(): Promise<RunRecord> {
  const plan = [
    { id: 0, task: "summarization", dep: [-1], args: { text: "Switchboard routes each request to the right small model." } },
    { id: 1, task: "translation", dep: [0], args: { text: "<GENERATED>-0" } },
    { id: 2, task: "text-generation", dep: [-1], args: { text: "Write one line about routers." } },
    { id: 3, task: "text-classification", dep: [-1], args: { text: "I like this." } },
  ];
  return (fourTaskRecord ??= routerRun({ plan, planner: llmOn(TINY, true), requestId: "obs-router-run", text: "Summarise, translate, write and classify." }));
}

async function routerRun(options: { plan?: unknown; planner: ChatLlm; requestId: string; text: string }): Promise<RunRecord> {
  const config = testConfig();
  const record = await runOrchestration({
    messages: [{ role: "user", content: options.text }],
    ...(options.plan === undefined ? {} : { plan: options.plan }),
    signal: new AbortController().signal,
    llm: { planner: options.planner, responder: llmOn(TINY, true) },
    executor: createJobExecutor({ submit: (job, submitOptions) => server.dispatcher.submit(job, submitOptions), chatMaxTokens: 16 }),
    catalogView: catalogView(config),
    observer: server.metrics.router,
    requestId: options.requestId,
    config: { maxTasks: 4, maxReplans: 1, responder: { maxTokens: 16 }, planner: { maxTokens: 256, temperature: 0 } },
  });
  runs.push(record);
  return record;
}

beforeAll(async () => {
  for (const program of ["promtool", "prometheus", "chromium"]) requireProgram(program);
  modelsDir = mkdtempSync(join(tmpdir(), "switchboard-observability-"));
  wire = await startHfWireServer({
    models: { "acme/summarizer": "summarization", "acme/translator": "translation", "acme/classifier": "text-classification", "acme/chat": "conversational" },
  });
  // The classifier always fails upstream: errors, retries, and an open circuit after two calls.
  wire.setBehaviour("acme/classifier", { fail: "500" });
  log = captureLog("debug");
  server = await createEmbeddedServer({ config: testConfig(), logger: log.logger, recentRuns });
  await server.backend.whenReady(TINY);
  baseURL = await server.app.listen({ port: 0, host: "127.0.0.1" });
  prometheus = await startPrometheus({ gateway: [new URL(baseURL).host] });
}, 60_000);

afterAll(async () => {
  await prometheus?.close();
  await server?.close();
  await wire?.close();
  if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
});

describe("metrics move by exactly what the requests did", () => {
  it("chat requests: requests, durations, tokens in and out, first tokens, queue and worker counts", { timeout: 30_000 }, async () => {
    const before = await metricsNow();
    const usages: { prompt_tokens: number; completion_tokens: number }[] = [];
    for (let index = 0; index < 4; index++) {
      const response = await chat({ messages: [{ role: "user", content: `Say something ${index}` }], max_tokens: 12 });
      expect(response.status).toBe(200);
      usages.push(((await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage);
    }
    for (let index = 0; index < 3; index++) {
      const response = await chat({ messages: [{ role: "user", content: `Stream ${index}` }], max_tokens: 12, stream: true, stream_options: { include_usage: true } });
      expect(response.status).toBe(200);
      usages.push(await streamedUsage(response));
    }
    const after = await metricsNow();
    const delta = (name: string, labels: Record<string, string> = {}) => sampleSum(after, name, labels) - sampleSum(before, name, labels);
    const route = { route: "/v1/chat/completions", method: "POST", status: "200", model: TINY };
    const input = usages.reduce((sum, usage) => sum + usage.prompt_tokens, 0);
    const output = usages.reduce((sum, usage) => sum + usage.completion_tokens, 0);

    expect(delta("switchboard_http_requests_total", route)).toBe(7);
    expect(delta("switchboard_http_request_duration_seconds_count", route)).toBe(7);
    expect(delta("switchboard_http_request_duration_seconds_bucket", { ...route, le: "+Inf" })).toBe(7);
    expect(delta("switchboard_gateway_tokens_total", { model: TINY, backend: "llama", type: "input" })).toBe(input);
    expect(delta("switchboard_gateway_tokens_total", { model: TINY, backend: "llama", type: "output" })).toBe(output);
    expect(delta("switchboard_gateway_job_duration_seconds_count", { model: TINY, kind: "chat", outcome: "completed" })).toBe(7);
    expect(delta("switchboard_gateway_time_to_first_token_seconds_count", { model: TINY })).toBe(usages.filter((usage) => usage.completion_tokens > 0).length);
    expect(delta("switchboard_gateway_time_per_output_token_seconds_count", { model: TINY })).toBe(usages.filter((usage) => usage.completion_tokens > 1).length);
    // The engine's side counts the same tokens.
    expect(delta("switchboard_worker_tokens_total", { model: TINY, backend: "llama", type: "output" })).toBe(output);
    expect(delta("switchboard_worker_job_duration_seconds_count", { model: TINY, outcome: "completed" })).toBe(7);
    expect(delta("switchboard_queue_jobs_total", { queue: `llama.${TINY}`, outcome: "completed" })).toBe(7);
    expect(delta("switchboard_queue_wait_seconds_count", { queue: `llama.${TINY}` })).toBe(7);
    expect(sampleSum(after, "switchboard_http_requests_in_flight")).toBe(1); // the scrape itself
    expect(sampleSum(after, "switchboard_llama_model_load_seconds_count", { model: TINY, outcome: "ok" })).toBe(1);
    expect(sampleSum(after, "switchboard_llama_sequences", { model: TINY })).toBe(2);
    expect(sampleSum(after, "switchboard_llama_context_capacity_tokens", { model: TINY })).toBeGreaterThanOrEqual(2 * 1024);
  });

  it("a prompt that starts like an earlier one is not read again, and the reused tokens are counted", { timeout: 30_000 }, async () => {
    const messages = [
      { role: "system", content: "You answer questions about telephone switchboards, operators, patch cords and exchanges, briefly and plainly." },
      { role: "user", content: "What did an operator do?" },
    ];
    const first = await chat({ messages, max_tokens: 4 });
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    const before = await metricsNow();
    const second = await chat({ messages, max_tokens: 4 });
    const usage = ((await second.json()) as { usage: { prompt_tokens: number } }).usage;
    const after = await metricsNow();
    // The sequence that ran the first request still holds the prompt: all of it but the last token is reused.
    expect(usage.prompt_tokens).toBeGreaterThan(32);
    expect(sampleSum(after, "switchboard_llama_prompt_tokens_reused_total", { model: TINY }) - sampleSum(before, "switchboard_llama_prompt_tokens_reused_total", { model: TINY })).toBe(usage.prompt_tokens - 1);
    // Idle sequences keep what they evaluated; it counts in the context in use.
    const cached = sampleSum(after, "switchboard_llama_context_cached_tokens", { model: TINY });
    expect(cached).toBeGreaterThanOrEqual(usage.prompt_tokens);
    expect(sampleSum(after, "switchboard_llama_context_used_tokens", { model: TINY })).toBeGreaterThanOrEqual(cached);
  });

  it("rejections are counted by reason: 401, 413 and 429 each once per refused request", { timeout: 30_000 }, async () => {
    const before = await metricsNow();
    const unauthorized = await chat({ messages: [{ role: "user", content: "hi" }] }, { authorization: "Bearer wrong" });
    expect(unauthorized.status).toBe(401);
    const tooLarge = await chat({ messages: [{ role: "user", content: "x".repeat(80 * 1024) }] });
    expect(tooLarge.status).toBe(413);
    // Two sequences and a line of one: a burst of long generations overflows it.
    let limited = 0;
    for (let burst = 0; burst < 5 && limited === 0; burst++) {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, index) => chat({ messages: [{ role: "user", content: `burst ${burst} ${index}` }], max_tokens: 256 })));
      for (const answer of answers) {
        if (answer.status === 429) limited++;
        await answer.arrayBuffer();
      }
    }
    expect(limited).toBeGreaterThan(0);
    const after = await metricsNow();
    const delta = (reason: string) => sampleSum(after, "switchboard_gateway_rejections_total", { reason }) - sampleSum(before, "switchboard_gateway_rejections_total", { reason });
    expect(delta("unauthorized")).toBe(1);
    expect(delta("payload_too_large")).toBe(1);
    expect(delta("rate_limited")).toBe(limited);
    expect(sampleSum(after, "switchboard_queue_jobs_total", { outcome: "rejected" }) - sampleSum(before, "switchboard_queue_jobs_total", { outcome: "rejected" })).toBe(limited);
  });

  it("label sets stay bounded after 1,000 requests to random paths and model names", { timeout: 60_000 }, async () => {
    const random = () => Math.random().toString(36).slice(2, 10);
    const names: string[] = [];
    const send = async (index: number) => {
      const name = `zz${random()}`;
      names.push(name);
      if (index % 2 === 0) return (await fetch(`${baseURL}/${name}/${random()}?q=${random()}`, { headers: authorized })).arrayBuffer();
      return (await chat({ model: name, messages: [{ role: "user", content: "hi" }] })).arrayBuffer();
    };
    for (let start = 0; start < 1000; start += 25) await Promise.all(Array.from({ length: 25 }, (_, offset) => send(start + offset)));
    const text = await (await fetch(`${baseURL}/metrics`)).text();
    for (const name of names.slice(0, 50)) expect(text).not.toContain(name);
    const parsed = parseExposition(text);
    // Every model label is a catalog id, `router`, `none` or `other`; every route a template.
    const models = new Set(parsed.samples.flatMap((sample) => (sample.labels.model === undefined ? [] : [sample.labels.model])));
    for (const model of models) expect([TINY, "obs-summarizer", "obs-translator", "obs-classifier", "obs-chat", "router", "none", "other"]).toContain(model);
    const routes = new Set(parsed.samples.flatMap((sample) => (sample.labels.route === undefined ? [] : [sample.labels.route])));
    for (const route of routes) expect(route === "unmatched" || route === "other" || route.startsWith("/")).toBe(true);
    expect(routes.size).toBeLessThan(40);
    expect(seriesCount(parsed, "switchboard_http_requests_total")).toBeLessThan(60);
    expect(sampleSum(parsed, "switchboard_http_requests_total", { route: "unmatched", status: "404", model: "none" })).toBe(500);
    expect(sampleSum(parsed, "switchboard_http_requests_total", { route: "/v1/chat/completions", status: "404", model: "other" })).toBe(500);
  });
});

describe("router runs", () => {
  it("a real run with a client plan records stages, task outcomes by task and backend, and a failed task", { timeout: 60_000 }, async () => {
    const before = await metricsNow();
    const record = await fourTaskRun();
    expect(record.status).toBe("completed");
    expect(record.requestId).toBe("obs-router-run");
    expect(record.tasks.map((task) => [task.task, task.status])).toEqual([
      ["summarization", "succeeded"],
      ["translation", "succeeded"],
      ["text-generation", "succeeded"],
      ["text-classification", "failed"],
    ]);
    const after = await metricsNow();
    const delta = (name: string, labels: Record<string, string>) => sampleSum(after, name, labels) - sampleSum(before, name, labels);
    for (const stage of ["plan", "select", "execute", "respond"]) expect(delta("switchboard_router_stage_duration_seconds_count", { stage, outcome: "ok" })).toBe(1);
    expect(delta("switchboard_router_plan_tasks_count", { source: "client" })).toBe(1);
    expect(delta("switchboard_router_plan_tasks_sum", { source: "client" })).toBe(4);
    expect(delta("switchboard_router_tasks_total", { task: "summarization", backend: "hf", status: "succeeded" })).toBe(1);
    expect(delta("switchboard_router_tasks_total", { task: "text-generation", backend: "llama", status: "succeeded" })).toBe(1);
    expect(delta("switchboard_router_tasks_total", { task: "text-classification", backend: "hf", status: "failed" })).toBe(1);
    expect(delta("switchboard_router_run_duration_seconds_count", { status: "completed" })).toBe(1);
    // The failing upstream: one call, retried once, counted as an error with its provider.
    expect(delta("switchboard_hf_upstream_retries_total", { model: "obs-classifier", provider: "hf-inference" })).toBe(1);
    expect(delta("switchboard_hf_upstream_errors_total", { model: "obs-classifier", provider: "hf-inference", code: "upstream_error" })).toBe(1);
    expect(delta("switchboard_hf_upstream_request_duration_seconds_count", { model: "obs-translator", provider: "endpoint", outcome: "ok" })).toBe(1);
  });

  it("a remote planner whose answers are not plans is re-planned, then answered as plain chat", { timeout: 60_000 }, async () => {
    const before = await metricsNow();
    const record = await routerRun({ planner: llmOn("obs-chat", false), requestId: "obs-remote-planner", text: "Summarise this sentence for me." });
    expect(record.planner.fallbackReason).toBeDefined();
    expect(record.replans).toBe(1);
    const after = await metricsNow();
    expect(sampleSum(after, "switchboard_router_replans_total", { source: "remote" }) - sampleSum(before, "switchboard_router_replans_total", { source: "remote" })).toBe(1);
    expect(sampleSum(after, "switchboard_router_plan_fallbacks_total", { source: "remote" }) - sampleSum(before, "switchboard_router_plan_fallbacks_total", { source: "remote" })).toBe(1);
  });

  it("a second failure opens the classifier's circuit, and the gauge says so", { timeout: 30_000 }, async () => {
    await routerRun({ plan: [{ id: 0, task: "text-classification", dep: [-1], args: { text: "Again." } }], planner: llmOn(TINY, true), requestId: "obs-circuit", text: "Classify." });
    const parsed = await metricsNow();
    expect(sampleSum(parsed, "switchboard_hf_circuit_state", { model: "obs-classifier", state: "open" })).toBe(1);
    expect(sampleSum(parsed, "switchboard_hf_circuit_state", { model: "obs-summarizer", state: "closed" })).toBe(1);
  });
});

describe("the exposition", () => {
  it("parses as Prometheus text and passes promtool check metrics", async () => {
    const text = await (await fetch(`${baseURL}/metrics`)).text();
    expect(() => parseExposition(text)).not.toThrow();
    const check = promtoolCheck(text);
    expect(check.output).toBe("");
    expect(check.ok).toBe(true);
  });
});

describe("request ids", () => {
  it("a client's x-request-id is echoed and appears in the gateway's and the engine's log lines for that request", async () => {
    const requestId = `obs-request-${Math.random().toString(36).slice(2)}`;
    const response = await chat({ messages: [{ role: "user", content: "hello" }], max_tokens: 4 }, { "x-request-id": requestId });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe(requestId);
    await response.arrayBuffer();
    const lines = log.mentioning(requestId);
    // Fastify's request lines (the gateway) carry it as requestId ...
    expect(lines.some((line) => line.requestId === requestId && line.msg === "request completed")).toBe(true);
    // ... and so do the engine's (the in-process worker), through the job's child logger.
    const engine = lines.filter((line) => line.requestId === requestId && line.backend === "llama" && typeof line.jobId === "string");
    expect(engine.map((line) => line.msg)).toContain("job finished");
    // A router run carries the request id into its record and every job it submits.
    const run = await fourTaskRun();
    expect(log.mentioning("obs-router-run").some((line) => line.backend === "hf" && typeof line.jobId === "string")).toBe(true);
    expect(run.requestId).toBe("obs-router-run");
  });
});

describe("Prometheus and the Grafana dashboard", () => {
  it("a real Prometheus scrapes the gateway and every dashboard query returns data", { timeout: 60_000 }, async () => {
    // The tests above made every kind of traffic the panels show (rejections, router runs, upstream
    // failures, an open circuit); this one adds fresh traffic, then waits for scrapes to cover it.
    for (let index = 0; index < 5; index++) await (await chat({ messages: [{ role: "user", content: `after ${index}` }], max_tokens: 8, stream: index % 2 === 0 })).arrayBuffer();
    await routerRun({ plan: [{ id: 0, task: "summarization", dep: [-1], args: { text: "One more run." } }], planner: llmOn(TINY, true), requestId: "obs-scraped-run", text: "Summarise." });
    await prometheus.scrapes(3);
    expect(await prometheus.query('up{job="gateway"}')).toEqual([expect.objectContaining({ value: [expect.any(Number), "1"] })]);

    const queries = dashboardQueries(dashboard, "1m");
    expect(queries.length).toBeGreaterThanOrEqual(35);
    const empty: string[] = [];
    for (const { panel, expr } of queries) {
      const result = await prometheus.query(expr);
      const expectedEmpty = Object.keys(NO_DATA_HERE).find((metric) => expr.includes(metric));
      if (expectedEmpty) {
        expect(result, `${panel}: ${expr} (${NO_DATA_HERE[expectedEmpty]})`).toEqual([]);
        continue;
      }
      if (result.length === 0) empty.push(`${panel}: ${expr}`);
    }
    expect(empty).toEqual([]);
  });
});

describe("the live console", () => {
  it("opened in headless Chromium, it asks for the key, then draws the run's graph with one node per task", { timeout: 60_000 }, async () => {
    const executablePath = spawnSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).stdout.trim();
    const browser = await chromium.launch({
      executablePath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(error.message));
      await page.goto(`${baseURL}/`);
      // The page loads without a key, but shows nothing from the JSON routes until one is given.
      await page.locator("#status", { hasText: "API key" }).waitFor();
      await page.fill("#api-key", KEY);
      await page.click("#key-form button");

      // The newest run is drawn first; the four-task run is picked from the list.
      const run = await fourTaskRun();
      await page.waitForSelector(`#runs tr[data-run-id="${run.id}"]`);
      await page.click(`#runs tr[data-run-id="${run.id}"]`);
      await page.locator("#graph-title", { hasText: run.id }).waitFor();
      const nodes = await page.$$eval("#graph g.task-node", (groups) =>
        groups.map((group) => ({ id: group.getAttribute("data-task-id"), state: group.getAttribute("data-state"), model: group.querySelector(".task-model")?.textContent })),
      );
      expect(nodes).toHaveLength(run.plan.length);
      expect(nodes).toEqual(
        run.plan.map((task) => ({
          id: String(task.id),
          state: run.tasks.find((record) => record.id === task.id)!.status,
          model: run.selections.find((selection) => selection.taskId === task.id)!.model,
        })),
      );
      // One edge per dependency: translation (1) depends on summarization (0).
      expect(await page.$$eval("#graph path.task-edge", (edges) => edges.map((edge) => [edge.getAttribute("data-from"), edge.getAttribute("data-to")]))).toEqual([["0", "1"]]);
      // Failed tasks are drawn in their own colour.
      const fills = await page.$$eval("#graph g.task-node rect", (rects) => rects.map((rect) => rect.getAttribute("fill")));
      expect(new Set(fills).size).toBe(2);
      // The stats and the models came through too.
      await page.locator("#models tbody tr").nth(4).waitFor();
      expect(await page.textContent("#models")).toContain(TINY);
      expect(Number(await page.textContent("#inflight"))).toBeGreaterThanOrEqual(0);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("the console's JSON routes need the key; the page itself does not", async () => {
    expect((await fetch(`${baseURL}/`)).status).toBe(200);
    expect((await fetch(`${baseURL}/console/console.js`)).status).toBe(200);
    expect((await fetch(`${baseURL}/v1/console/stats`)).status).toBe(401);
    expect((await fetch(`${baseURL}/v1/console/runs`)).status).toBe(401);
    const stats = (await (await fetch(`${baseURL}/v1/console/stats`, { headers: authorized })).json()) as { models: { id: string; state: string }[] };
    expect(stats.models.find((model) => model.id === TINY)?.state).toBe("ready");
    expect((await fetch(`${baseURL}/v1/console/runs/nope`, { headers: authorized })).status).toBe(404);
  });
});
