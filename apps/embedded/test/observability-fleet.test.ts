/**
 * Observability in fleet mode, on the real Redis: a gateway on the BullMQ
 * transport and a llama worker process's runtime (the worker-llama app,
 * in this process). One request's id must reach the worker's log lines; the
 * worker's `/metrics` must pass promtool; a real Prometheus must scrape both;
 * a job whose worker process dies is re-run by the llama worker, and the
 * dashboard's retried and stalled queries show it.
 * Redis: REDIS_URL, else 127.0.0.1:6379 (the test command provides one).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { Catalog, parseConfig } from "@switchboard/catalog";
import { buildGateway, queueForCatalog } from "@switchboard/gateway";
import { parseExposition, promtoolCheck, requireProgram, sampleSum } from "@switchboard/metrics/testing";
import { BullmqDispatcher, FleetKeys, llamaQueueName, type WorkerStatus } from "@switchboard/queue";
import { deletePrefix, waitForLiveWorkers, waitForReady } from "@switchboard/queue/test/redis-fixture";
import { startLlamaWorker, type LlamaWorker } from "@switchboard/worker-llama";
import { exited, forkWorker } from "@switchboard/queue/test/worker-processes";
import { captureLog, dashboardQueries, startPrometheus, type CapturedLog, type PrometheusServer } from "./observability-support.js";

const repoRoot = join(import.meta.dirname, "..", "..", "..");
const dashboard = JSON.parse(readFileSync(join(repoRoot, "deploy/grafana/dashboards/switchboard.json"), "utf8")) as Parameters<typeof dashboardQueries>[0];
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `sbobs-${Math.random().toString(36).slice(2, 12)}`;
const MODEL = "obs-fleet-tiny";
const QUEUE = llamaQueueName(MODEL);
/**
 * The llama worker's stalled-job check runs every 0.5 s, so a job lost with
 * its worker is back in seconds. Its idle wait for jobs is 1 s, so it soon
 * queues up behind a worker that started waiting after it (see the re-run test).
 */
const LLAMA_WORKER_TIMINGS = { heartbeatIntervalMs: 200, stalledInterval: 500, drainDelay: 1 };

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
  // The worker's log at its default level: following a request there must not need debug logging.
  workerLog = captureLog("info");
  gatewayLog = captureLog("debug");
  worker = await startLlamaWorker({ config, redisUrl, prefix, port: 0, host: "127.0.0.1", logger: workerLog.logger, transport: LLAMA_WORKER_TIMINGS });
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
    expect(workerLines.find((line) => line.msg === "job finished")).toMatchObject({ attempt: 1, outcome: "completed", model: MODEL });
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

  it("a job whose worker process dies before any output is re-run by the llama worker, the client gets the whole answer, and the dashboard's retried and stalled queries show it", { timeout: 30_000 }, async () => {
    // The worker exports both counts at 0 for its queue from the start, so the first loss is an increase rate() can see.
    const exposition = parseExposition(await (await fetch(`${worker.url}/metrics`)).text());
    for (const metric of ["switchboard_queue_jobs_retried_total", "switchboard_queue_jobs_stalled_total"]) {
      expect(exposition.samples.filter((sample) => sample.name === metric && sample.labels.queue === QUEUE).map((sample) => sample.value), metric).toEqual([0]);
    }
    await prometheus.scrapes(1);

    const { requestId, status, body } = await loseJobWithItsWorker();
    // The client never saw the lost attempt: it got one whole answer, from the llama worker.
    expect(status).toBe(200);
    expect(body.object).toBe("chat.completion");
    expect(body.choices).toHaveLength(1);
    expect(typeof body.choices[0]!.message.content).toBe("string");
    expect(["length", "stop"]).toContain(body.choices[0]!.finish_reason);
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(4);
    expect(workerLog.mentioning(requestId).some((line) => line.backend === "llama")).toBe(true);
    // The llama worker's stalled check found the job (one stall) and ran it again (one re-run).
    expect(await rerunCounters()).toEqual({ retried: 1, stalled: 1 });
    await prometheus.scrapes(2);

    const queries = dashboardQueries(dashboard, "1m");
    for (const metric of ["switchboard_queue_jobs_retried_total", "switchboard_queue_jobs_stalled_total"]) {
      const scraped = await prometheus.query(`${metric}{job="worker-llama", queue="${QUEUE}"}`);
      expect(scraped.map((sample) => sample.value[1]), metric).toEqual(["1"]);
      const panels = queries.filter(({ expr }) => expr.includes(metric));
      expect(panels.length, metric).toBeGreaterThan(0);
      for (const { panel, expr } of panels) {
        const rates = Object.fromEntries((await prometheus.query(expr)).map((sample) => [sample.metric.queue, Number(sample.value[1])]));
        expect(rates[QUEUE], `${panel}: ${expr}`).toBeGreaterThan(0);
      }
    }
  });
});

/** The llama worker's own count of re-run and stalled jobs of its queue, from its `/metrics`. */
async function rerunCounters(): Promise<{ retried: number; stalled: number }> {
  const exposition = parseExposition(await (await fetch(`${worker.url}/metrics`)).text());
  return {
    retried: sampleSum(exposition, "switchboard_queue_jobs_retried_total", { queue: QUEUE }),
    stalled: sampleSum(exposition, "switchboard_queue_jobs_stalled_total", { queue: QUEUE }),
  };
}

interface ChatCompletion {
  object: string;
  choices: { message: { content: string | null }; finish_reason: string }[];
  usage: { completion_tokens: number };
}

/**
 * Starts a second worker process on the llama queue (the scripted backend: its
 * engine says `accepted` to the prompt `hang` and then waits), sends it one
 * request through the gateway and SIGKILLs it holding the job: no lock renewal,
 * no output, no end marker. Returns the client's answer, which only a re-run
 * on the llama worker can give.
 */
async function loseJobWithItsWorker(): Promise<{ requestId: string; status: number; body: ChatCompletion }> {
  const before = await rerunCounters();
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const tag = `doomed-${Math.random().toString(36).slice(2, 8)}`;
  const statusKey = new FleetKeys(prefix).workerStatus(`worker-${tag}`);
  const doomedQueue = async () => {
    const text = await redis.get(statusKey);
    const queue = text ? (JSON.parse(text) as WorkerStatus).queues[0] : undefined;
    return { serving: queue?.serving === true, running: queue?.running ?? 0 };
  };
  // Its stalled check is as short as the llama worker's: each check holds a lock for one interval,
  // and a long one would keep the llama worker's check out. Its idle wait is long (see below).
  const doomed = await forkWorker({
    redisUrl,
    prefix,
    tag,
    concurrency: 1,
    options: { queues: [{ name: QUEUE, models: [MODEL], concurrency: 1 }], lockDuration: 1000, stalledInterval: 500, drainDelay: 30, heartbeatIntervalMs: 200, heartbeatTtlMs: 800 },
  });
  try {
    while (!(await doomedQueue()).serving) await sleep(25);
    // Idle BullMQ workers wait for a job in Redis' first-come order. The doomed worker waits 30 s at a
    // time; the llama worker's 1 s wait ends and it queues up again behind it: the next job is the doomed one's.
    for (let tries = 0; tries < 3; tries++) {
      await sleep(1500);
      const requestId = `obs-fleet-rerun-${Math.random().toString(36).slice(2)}`;
      let settled = false;
      const answer = fetch(`${baseURL}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": requestId },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hang" }], max_tokens: 4 }),
      }).then(async (response) => ({ requestId, status: response.status, body: (await response.json()) as ChatCompletion }));
      void answer.finally(() => (settled = true)).catch(() => undefined);
      while (!settled && (await doomedQueue()).running === 0) await sleep(25);
      if ((await doomedQueue()).running === 0) {
        // The llama worker took the job in the instant between two of its waits, and answered it.
        await answer;
        continue;
      }
      // Alive, the doomed worker renews its 1 s lock: a second later the job is neither stalled nor re-run.
      await sleep(1000);
      expect(await rerunCounters()).toEqual(before);
      doomed.kill("SIGKILL");
      return await answer;
    }
    throw new Error("the doomed worker never took a job");
  } finally {
    if (doomed.exitCode === null && doomed.signalCode === null) doomed.kill("SIGKILL");
    await exited(doomed);
    redis.disconnect();
  }
}
