/**
 * Observability in fleet mode, on the real Redis: a gateway on the BullMQ
 * transport and a llama worker process's runtime (the worker-llama app,
 * in this process). One request's id must reach the worker's log lines; the
 * worker's `/metrics` must pass promtool; a real Prometheus must scrape both.
 * Redis: REDIS_URL, else 127.0.0.1:6379 (the test command provides one).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { Catalog, parseConfig } from "@switchboard/catalog";
import { buildGateway, queueForCatalog } from "@switchboard/gateway";
import { promtoolCheck, requireProgram } from "@switchboard/metrics/testing";
import { BullmqDispatcher, llamaQueueName } from "@switchboard/queue";
import { deletePrefix, waitForLiveWorkers, waitForReady } from "@switchboard/queue/test/redis-fixture";
import { startLlamaWorker, type LlamaWorker } from "@switchboard/worker-llama";
import { captureLog, startPrometheus, type CapturedLog, type PrometheusServer } from "./observability-support.js";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `sbobs-${Math.random().toString(36).slice(2, 12)}`;
const MODEL = "obs-fleet-tiny";

let modelsDir: string;
let worker: LlamaWorker;
let dispatcher: BullmqDispatcher;
let gateway: FastifyInstance;
let baseURL: string;
let gatewayLog: CapturedLog;
let workerLog: CapturedLog;
let prometheus: PrometheusServer;

beforeAll(async () => {
  requireProgram("promtool");
  requireProgram("prometheus");
  modelsDir = mkdtempSync(join(tmpdir(), "switchboard-observability-fleet-"));
  const config = parseConfig(
    { server: { port: 0, host: "127.0.0.1", logLevel: "debug" }, modelsDir, models: [{ id: MODEL, backend: "llama", source: "generated:tiny", contextSize: 1024, sequences: 2 }] },
    { env: {}, baseDir: modelsDir },
  );
  workerLog = captureLog("debug");
  gatewayLog = captureLog("debug");
  worker = await startLlamaWorker({ config, redisUrl, prefix, port: 0, host: "127.0.0.1", logger: workerLog.logger, transport: { heartbeatIntervalMs: 200 } });
  const catalog = new Catalog(config);
  dispatcher = new BullmqDispatcher({ connection: redisUrl, prefix, queueFor: queueForCatalog(catalog) });
  gateway = await buildGateway({ config, catalog, dispatcher, logger: gatewayLog.logger, readiness: "transport" });
  baseURL = await gateway.listen({ port: 0, host: "127.0.0.1" });
  await waitForLiveWorkers(redisUrl, prefix, [llamaQueueName(MODEL)]);
  await waitForReady([dispatcher]);
  prometheus = await startPrometheus({ gateway: [new URL(baseURL).host], "worker-llama": [new URL(worker.url).host] });
}, 60_000);

afterAll(async () => {
  await prometheus?.close();
  await gateway?.close();
  await dispatcher?.close();
  await worker?.close();
  // Only this test's own keys, found by prefix.
  await deletePrefix(redisUrl, prefix);
  if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
});

describe("fleet mode", () => {
  it("one request's id is in the gateway's log lines and in the worker's", { timeout: 30_000 }, async () => {
    const requestId = `obs-fleet-${Math.random().toString(36).slice(2)}`;
    const response = await fetch(`${baseURL}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": requestId },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 4 }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe(requestId);
    await response.arrayBuffer();
    expect(gatewayLog.mentioning(requestId).some((line) => line.requestId === requestId && line.msg === "request completed")).toBe(true);
    // The worker is another process in production: the id reached it as job data, through Redis.
    const workerLines = workerLog.mentioning(requestId);
    expect(workerLines.length).toBeGreaterThan(0);
    expect(workerLines.every((line) => line.requestId === requestId)).toBe(true);
    expect(workerLines.some((line) => line.backend === "llama" && typeof line.jobId === "string")).toBe(true);
  });

  it("the worker's and the gateway's /metrics pass promtool, and a real Prometheus scrapes both", { timeout: 30_000 }, async () => {
    for (const url of [`${worker.url}/metrics`, `${baseURL}/metrics`]) {
      const check = promtoolCheck(await (await fetch(url)).text());
      expect(check.output, url).toBe("");
      expect(check.ok).toBe(true);
    }
    await prometheus.scrapes(2);
    const up = await prometheus.query("up");
    expect(Object.fromEntries(up.map((sample) => [sample.metric.job, sample.value[1]]))).toEqual({ gateway: "1", "worker-llama": "1" });
    // Both processes report prom-client's process metrics.
    expect((await prometheus.query("process_resident_memory_bytes")).map((sample) => sample.metric.job).sort()).toEqual(["gateway", "worker-llama"]);
  });
});
