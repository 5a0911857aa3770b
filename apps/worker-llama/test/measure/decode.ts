/**
 * Decoding with the real llama engine, in-process against fleet mode, and
 * what decoding does to the event loop of the process that renews BullMQ
 * locks. Interleaved rounds, same models and settings.
 *
 * - in-process: LlamaBackend.run() in this process.
 * - fleet: a child process serves the same config over BullMQ (serveBackend);
 *   this process submits through BullmqDispatcher.
 * Event-loop delay is sampled (monitorEventLoopDelay, 1 ms resolution) in the
 * process that runs the engine while it decodes.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx apps/worker-llama/test/measure/decode.ts [max-tokens] [rounds] [jobs-per-stream]
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { parseConfig, type SwitchboardConfig } from "@switchboard/catalog";
import { createConfiguredLlamaBackend } from "@switchboard/llama";
import { silentLogger, type CompletionJob, type JobEvent } from "@switchboard/protocol";
import { BullmqDispatcher, serveBackend } from "@switchboard/queue";

const role = process.argv[2];
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const MODELS = ["gen-tiny", "gen-25m"];

function config(modelsDir: string): SwitchboardConfig {
  return parseConfig(
    {
      modelsDir,
      models: [
        { id: "gen-tiny", backend: "llama", source: "generated:tiny", contextSize: 2048, sequences: 4 },
        { id: "gen-25m", backend: "llama", source: "generated:25m", contextSize: 2048, sequences: 4 },
      ],
    },
    { env: {}, baseDir: modelsDir },
  );
}

interface LoopStats {
  p50: number;
  p99: number;
  max: number;
  /** Worst lateness of a 100 ms timer (what a lock-renewal timer would see). */
  timerLateMax: number;
}

function watchLoop(): () => LoopStats {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let timerLateMax = 0;
  let expected = performance.now() + 100;
  const timer = setInterval(() => {
    const now = performance.now();
    timerLateMax = Math.max(timerLateMax, now - expected);
    expected = now + 100;
  }, 100);
  return () => {
    histogram.disable();
    clearInterval(timer);
    return {
      p50: histogram.percentile(50) / 1e6,
      p99: histogram.percentile(99) / 1e6,
      max: histogram.max / 1e6,
      timerLateMax,
    };
  };
}

function completionJob(model: string, tokens: number, index: number): CompletionJob {
  return {
    kind: "completion",
    id: `bench-${model}-${Date.now()}-${index}-${Math.random().toString(36).slice(2, 8)}`,
    requestId: "bench",
    model,
    prompts: [`Story number ${index}: once upon a time`],
    maxTokens: tokens,
    sampling: { temperature: Number(process.env.SB_TEMPERATURE ?? 1), seed: index + 1 },
    stop: [],
  };
}

interface Timing {
  tokens: number;
  ttftMs: number;
}

async function timeStream(events: AsyncIterable<JobEvent>, started: number): Promise<Timing> {
  let first = 0;
  let tokens = 0;
  for await (const event of events) {
    if (event.type === "text-delta" && first === 0) first = performance.now();
    if (event.type === "finish") tokens += event.completionTokens;
    if (event.type === "error") throw new Error(event.error.message);
  }
  return { tokens, ttftMs: first - started };
}

async function workerRole(): Promise<void> {
  const modelsDir = process.argv[3]!;
  const backend = createConfiguredLlamaBackend(config(modelsDir), { logger: silentLogger });
  backend.start();
  await Promise.all(MODELS.map((id) => backend.whenReady(id)));
  const server = serveBackend(backend, {
    connection: redisUrl,
    prefix: process.argv[4]!,
    concurrencyPerModel: 4,
    heartbeatIntervalMs: 200,
  });
  let stop: (() => LoopStats) | undefined;
  process.on("message", (message) => {
    if (message === "watch") stop = watchLoop();
    if (message === "report") process.send?.(stop?.());
    if (message === "exit") void server.close({ drainTimeoutMs: 0 }).then(() => backend.close()).then(() => process.exit(0));
  });
  process.send?.("ready");
}

async function main(): Promise<void> {
  const tokens = Number(process.argv[2] ?? 200);
  const rounds = Number(process.argv[3] ?? 2);
  const jobsPerStream = Number(process.argv[4] ?? 10);
  const modelsDir = mkdtempSync(join(tmpdir(), "sb-decode-"));
  const prefix = `sbbench-${Math.random().toString(36).slice(2, 10)}`;
  const backend = createConfiguredLlamaBackend(config(modelsDir), { logger: silentLogger });
  backend.start();
  await Promise.all(MODELS.map((id) => backend.whenReady(id)));
  const child = fork(process.argv[1]!, ["worker", modelsDir, prefix], { execArgv: process.execArgv });
  process.on("exit", () => child.kill("SIGKILL"));
  await new Promise((resolve) => child.once("message", resolve));
  const dispatcher = new BullmqDispatcher({ connection: redisUrl, prefix });
  while (!(await dispatcher.ready())) await sleep(20);
  await sleep(500);
  const ask = <T>(message: string) =>
    new Promise<T>((resolve) => {
      child.once("message", (reply) => resolve(reply as T));
      child.send(message);
    });

  const rows: string[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const model of MODELS) {
      for (const streams of [1, 4]) {
        for (const mode of ["in-process", "fleet"] as const) {
          let stopLocal: (() => LoopStats) | undefined;
          if (mode === "in-process") stopLocal = watchLoop();
          else child.send("watch");
          const started = performance.now();
          // The generated models end their text after ~30 tokens, so each stream runs several jobs in a row.
          const timings = (
            await Promise.all(
              Array.from({ length: streams }, async (_, stream) => {
                const results: Timing[] = [];
                for (let sequence = 0; sequence < jobsPerStream; sequence++) {
                  const job = completionJob(model, tokens, stream * 1000 + sequence);
                  const t0 = performance.now();
                  const events =
                    mode === "in-process" ? backend.run(job, { signal: new AbortController().signal, logger: silentLogger }) : dispatcher.submit(job);
                  results.push(await timeStream(events, t0));
                }
                return results;
              }),
            )
          ).flat();
          const wall = (performance.now() - started) / 1000;
          const loop = mode === "in-process" ? stopLocal!() : await ask<LoopStats>("report");
          const totalTokens = timings.reduce((sum, timing) => sum + timing.tokens, 0);
          const ttft = timings.map((timing) => timing.ttftMs).sort((a, b) => a - b);
          rows.push(
            `round ${round} ${model.padEnd(8)} ${streams} stream(s) ${mode.padEnd(10)}: ` +
              `${(totalTokens / wall).toFixed(0)} tok/s (${totalTokens} tokens in ${wall.toFixed(2)} s, prefill included), ` +
              `TTFT p50 ${ttft[Math.floor(ttft.length / 2)]!.toFixed(1)} ms; ` +
              `event loop p50 ${loop.p50.toFixed(2)} ms p99 ${loop.p99.toFixed(2)} ms max ${loop.max.toFixed(1)} ms, 100 ms timer late by <= ${loop.timerLateMax.toFixed(1)} ms`,
          );
          console.log(rows.at(-1));
        }
      }
    }
  }
  child.send("exit");
  await new Promise((resolve) => child.once("exit", resolve));
  await dispatcher.close();
  await backend.close();
  rmSync(modelsDir, { recursive: true, force: true });
  // Only this run's keys.
  const redis = new Redis(redisUrl);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
  redis.disconnect();
}

if (role === "worker") await workerRole();
else await main();
