/**
 * Round trip at one connection, interleaved in one run on a private
 * redis-server: bare BullMQ (add → trivial worker → result through
 * QueueEvents.waitUntilFinished) against this transport (submit → worker
 * runtime with a scripted backend yielding accepted, one delta, finish → last
 * event). Workers run in a child process, as they would in the fleet. Also
 * reports CPU per request (both processes and Redis) and Redis commands per
 * request (counted where they are sent).
 *
 *   npx tsx packages/queue/test/measure/round-trip.ts [requests-per-round] [rounds] [in-flight]
 */
import { fork, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { BullmqDispatcher, serveBackend } from "../../src/index.js";
import { TEST_MODEL, scriptJob } from "../jobs.js";
import { ScriptedBackend } from "../scripted-backend.js";

const [role = "main", url = "", prefix = "bench", workerConcurrency = "1"] = process.argv.slice(2);

/** Commands this process sent to Redis (pipelined ones included), counted at the client. */
let commandsSent = 0;
const sendCommand = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<Redis["sendCommand"]>) {
  commandsSent++;
  return sendCommand.apply(this, args);
} as Redis["sendCommand"];

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function workerProcess(): Promise<void> {
  const concurrency = Number(workerConcurrency);
  const bare = new Worker("bare", async () => "ok", { connection: { url, maxRetriesPerRequest: null }, prefix, concurrency });
  const server = serveBackend(new ScriptedBackend([TEST_MODEL]), { connection: url, prefix, concurrencyPerModel: concurrency });
  await bare.waitUntilReady();
  process.on("message", (message) => {
    if (message === "cpu") process.send?.({ cpuMs: cpuMs(), commands: commandsSent });
    if (message === "stop") void Promise.all([bare.close(), server.close({ drainTimeoutMs: 0 })]).then(() => process.exit(0));
  });
  process.send?.("ready");
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 1000);
  const rounds = Number(process.argv[3] ?? 3);
  /** Requests in flight at once (connections, in HTTP terms). */
  const connections = Number(process.argv[4] ?? 1);
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-"));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = spawn("redis-server", ["--port", String(port), "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  const serverUrl = `redis://127.0.0.1:${port}`;
  const admin = new Redis(serverUrl, { retryStrategy: () => 50 });
  admin.on("error", () => undefined);
  await admin.ping();
  const child = fork(process.argv[1]!, ["worker", serverUrl, "bench", String(connections)], { execArgv: process.execArgv });
  process.on("exit", () => {
    child.kill("SIGKILL");
    server.kill("SIGKILL");
  });
  await new Promise((resolve) => child.once("message", resolve));
  const childCpu = async () => {
    child.send("cpu");
    return await new Promise<{ cpuMs: number; commands: number }>((resolve) => child.once("message", (message) => resolve(message as { cpuMs: number; commands: number })));
  };
  const redisStats = async () => {
    const cpu = await admin.info("cpu");
    const seconds = Number(/used_cpu_user:([\d.]+)/.exec(cpu)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(cpu)?.[1]);
    return { cpuMs: seconds * 1000 };
  };

  const queue = new Queue("bare", { connection: { url: serverUrl }, prefix: "bench" });
  const queueEvents = new QueueEvents("bare", { connection: { url: serverUrl }, prefix: "bench" });
  await queueEvents.waitUntilReady();
  const dispatcher = new BullmqDispatcher({ connection: serverUrl, prefix: "bench", maxWaiting: 1000 });
  while (!(await dispatcher.ready())) await sleep(20);
  await sleep(1500);

  const variants: Record<string, () => Promise<void>> = {
    "bare BullMQ": async () => {
      // Kept a while: waitUntilFinished needs the finished job to still exist.
      const job = await queue.add("j", { n: 1 }, { removeOnComplete: { count: 1000 } });
      await job.waitUntilFinished(queueEvents);
    },
    "switchboard transport": async () => {
      for await (const event of dispatcher.submit(scriptJob("echo:1"))) {
        if (event.type === "error") throw new Error(event.error.message);
      }
    },
  };
  const results = new Map<string, { latencies: number[]; cpuMs: number; redisCpuMs: number; calls: number; count: number; seconds: number }>();
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(variants)) {
      for (let warm = 0; warm < 50; warm++) await run();
      const child0 = await childCpu();
      const cpu0 = cpuMs();
      const commands0 = commandsSent;
      const redis0 = await redisStats();
      const latencies: number[] = [];
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: connections }, async () => {
          while (next++ < requests) {
            const begun = performance.now();
            await run();
            latencies.push(performance.now() - begun);
          }
        }),
      );
      const wallSeconds = (performance.now() - started) / 1000;
      const commands1 = commandsSent;
      const cpu1 = cpuMs();
      const redis1 = await redisStats();
      const child1 = await childCpu();
      const entry = results.get(name) ?? { latencies: [], cpuMs: 0, redisCpuMs: 0, calls: 0, count: 0, seconds: 0 };
      entry.seconds += wallSeconds;
      entry.latencies.push(...latencies);
      entry.cpuMs += cpu1 - cpu0 + (child1.cpuMs - child0.cpuMs);
      entry.redisCpuMs += redis1.cpuMs - redis0.cpuMs;
      entry.calls += commands1 - commands0 + (child1.commands - child0.commands);
      entry.count += requests;
      results.set(name, entry);
    }
  }
  for (const [name, entry] of results) {
    const sorted = entry.latencies.sort((a, b) => a - b);
    console.log(
      `${name.padEnd(22)} ${connections} in flight, n=${entry.count}: ${(entry.count / entry.seconds).toFixed(0)} requests/s, p50 ${percentile(sorted, 50).toFixed(3)} ms  p99 ${percentile(sorted, 99).toFixed(3)} ms  ` +
        `CPU/request: node ${((entry.cpuMs / entry.count) * 1000).toFixed(0)} us + redis ${((entry.redisCpuMs / entry.count) * 1000).toFixed(0)} us  ` +
        `commands sent/request ${(entry.calls / entry.count).toFixed(1)}`,
    );
  }
  child.send("stop");
  await new Promise((resolve) => child.once("exit", resolve));
  await dispatcher.close();
  await queueEvents.close();
  await queue.close();
  admin.disconnect();
  server.kill("SIGTERM");
  await sleep(200);
  rmSync(dir, { recursive: true, force: true });
}

if (role === "worker") await workerProcess();
else await main();
