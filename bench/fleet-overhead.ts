/**
 * What fleet mode costs: the embedded server (in-process transport) against
 * the fleet (a gateway process and worker processes over BullMQ on the real
 * Redis), with a bare BullMQ round trip as the floor, interleaved in one run.
 *
 *   pnpm bench:fleet [--rounds 5] [--requests 400] [--streams 12] [--burst 10000] [--connections 50] [--idle-ms 300]
 *
 * Every side is its own set of child processes, alive for the whole run, with
 * the same models and settings; each round runs every phase and alternates
 * which side goes first. Phases:
 *
 * - latency: `--requests` sequential 1-token completions (`max_tokens: 1`) on
 *   the generated tiny model at one connection; the bare floor is as many
 *   `Queue.add` + trivial worker + `waitUntilFinished` round trips, no HTTP;
 *   the fleet side once more on a worker whose model has one sequence
 *   (otherwise the same): BullMQ fetches ahead when a worker may run several
 *   jobs, and on two cores those extra fetches slow the job they run beside;
 * - streaming: `--streams` chat replies on the generated 25m model through
 *   the official openai client with include_usage (generated models end a
 *   reply after ~45 tokens). Decode tokens/s is the tokens after the first
 *   text chunk over first-to-last chunk. The fleet coalesces deltas into
 *   fewer chunks, so the first chunk may carry several tokens: its share is
 *   estimated from its share of the reply's characters (bench:decode's
 *   `tokens - 1`, which a coalesced first chunk flatters, is kept in the
 *   JSON). Tokens over request-to-last-token and chunks per reply are
 *   reported beside it;
 * - throughput: `--burst` completions at `--connections` in flight against a
 *   worker serving a trivial scripted backend (accepted, one delta, finish),
 *   against the bare floor at the same concurrency. A burst lasts a few
 *   seconds: at 2,000 requests it lasted half a second, and rounds moved
 *   the ratio by a third.
 *
 * CPU per request is /proc utime+stime of the side's processes (the HTTP
 * client, this process, is reported apart; the bare producer is counted) plus Redis'
 * `used_cpu_user+used_cpu_sys`; Redis commands per request is the change in
 * `INFO commandstats` calls (commands run inside Lua scripts count too, so
 * it exceeds network round trips). Redis is shared: its background rate,
 * measured idle in each round, is subtracted. Listener-leak warnings
 * (`MaxListenersExceededWarning`) are counted in every process: from
 * 'warning' events here and in the forked roles, from stderr of the others.
 */
import { execSync, fork, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ensureTestModel } from "@switchboard/llama";
import { llamaQueueName, serveBackend } from "@switchboard/queue";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { Pool } from "undici";
import { ScriptedBackend } from "../packages/queue/test/scripted-backend.js";

const root = resolve(import.meta.dirname, "..");
const workDir = join(root, ".switchboard", "bench");
const role = process.env.FLEET_BENCH_ROLE ?? "main";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
/** This run's BullMQ prefix (forked roles get their parent's): random, so only its own keys are ever deleted. */
const prefix = process.env.FLEET_BENCH_PREFIX ?? `sbbench-${randomBytes(5).toString("hex")}`;

const TINY = "bench-tiny";
const MODEL_25M = "bench-25m";
const TRIVIAL = "bench-trivial";
/** The tiny model again, on a worker with one sequence: its BullMQ worker never fetches ahead. */
const TINY_ONE_SEQUENCE = "bench-tiny-1seq";
const BARE_QUEUE = "bare";
const WARNING = "MaxListenersExceededWarning";

/** The subset of BullMQ the floor uses. */
interface BullJob {
  waitUntilFinished(events: BullQueueEvents, ttl?: number): Promise<unknown>;
}
interface BullQueue {
  add(name: string, data: unknown, options: { removeOnComplete: { count: number }; removeOnFail: { count: number } }): Promise<BullJob>;
  setMaxListeners(count: number): unknown;
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
}
interface BullQueueEvents {
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
}
interface BullWorker {
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
}
interface BullmqModule {
  Queue: new (name: string, options: { connection: object; prefix: string }) => BullQueue;
  QueueEvents: new (name: string, options: { connection: object; prefix: string }) => BullQueueEvents;
  Worker: new (name: string, handler: () => Promise<unknown>, options: { connection: object; prefix: string; concurrency: number }) => BullWorker;
}

/** BullMQ is a dependency of the queue package, not of the root: load it from there (the version the transport uses). */
function loadBullmq(): BullmqModule {
  return createRequire(join(root, "packages/queue/package.json"))("bullmq") as BullmqModule;
}

// ---------------------------------------------------------------- forked roles

/** Warnings of this process, reported to the parent on request. */
const ownWarnings: string[] = [];
process.on("warning", (warning) => ownWarnings.push(`${warning.name}: ${warning.message}`));

type RoleMessage = { type: "run"; requests: number; connections: number } | { type: "warnings" } | { type: "stop" };

interface LoopResult {
  latencies: number[];
  wallMs: number;
  errors: number;
  firstError?: string;
}

async function roleMain(): Promise<void> {
  const concurrency = Number(process.env.FLEET_BENCH_CONCURRENCY ?? 50);
  let close: () => Promise<void>;
  let run: ((requests: number, connections: number) => Promise<LoopResult>) | undefined;
  if (role === "bare-worker") {
    const { Worker } = loadBullmq();
    const worker = new Worker(BARE_QUEUE, async () => "ok", { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix, concurrency });
    await worker.waitUntilReady();
    close = () => worker.close();
  } else if (role === "bare-producer") {
    const { Queue, QueueEvents } = loadBullmq();
    const queue = new Queue(BARE_QUEUE, { connection: { url: redisUrl }, prefix });
    // waitUntilFinished adds a 'closing' listener to the Queue per pending job (BullMQ's own pattern):
    // the floor raises the limit so the warning check stays about Switchboard's processes.
    queue.setMaxListeners(concurrency + 16);
    const events = new QueueEvents(BARE_QUEUE, { connection: { url: redisUrl }, prefix });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    run = (requests, connections) =>
      closedLoop(requests, connections, async () => {
        // Kept a while: waitUntilFinished reads the finished job when its event raced the listener.
        const job = await queue.add("j", { n: 1 }, { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } });
        await job.waitUntilFinished(events, 30_000);
      });
    close = async () => {
      await events.close();
      await queue.close();
    };
  } else if (role === "scripted-worker") {
    const server = serveBackend(new ScriptedBackend([TRIVIAL]), {
      connection: redisUrl,
      prefix,
      queues: [{ name: llamaQueueName(TRIVIAL), models: [TRIVIAL], concurrency }],
    });
    close = () => server.close({ drainTimeoutMs: 1000 });
  } else {
    throw new Error(`unknown FLEET_BENCH_ROLE ${role}`);
  }
  process.on("message", (message: RoleMessage) => {
    if (message.type === "run" && run) void run(message.requests, message.connections).then((result) => process.send?.({ type: "result", result }));
    if (message.type === "warnings") process.send?.({ type: "warnings", warnings: ownWarnings });
    if (message.type === "stop") void close().finally(() => process.exit(0));
  });
  process.send?.({ type: "ready" });
}

/** `connections` loops, each sending its next request when the last one is answered, until `requests` are done. */
async function closedLoop(requests: number, connections: number, one: () => Promise<void>): Promise<LoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next++ < requests) {
        const begun = performance.now();
        try {
          await one();
          latencies.push(performance.now() - begun);
        } catch (error) {
          errors++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }),
  );
  return { latencies, wallMs: performance.now() - started, errors, ...(firstError ? { firstError } : {}) };
}

// ---------------------------------------------------------------- main

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index += 2) args.set(process.argv[index]!.replace(/^--/, ""), process.argv[index + 1] ?? "");
const rounds = Number(args.get("rounds") ?? 5);
const requests = Number(args.get("requests") ?? 400);
const streams = Number(args.get("streams") ?? 12);
const burst = Number(args.get("burst") ?? 10_000);
const connections = Number(args.get("connections") ?? 50);
/** Length of each idle window that measures Redis' background rate, before and after every run. */
const idleMs = Number(args.get("idle-ms") ?? 300);
/** Same engine settings on both sides (those of bench:decode). */
const modelSettings = { contextSize: 2048, sequences: 4, threads: 1, maxTokens: 512, defaultMaxTokens: 512, maxWaiting: 64 };

const clockTicks = (() => {
  try {
    return Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in ms. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

/** A child process this run owns: its output tail (for errors) and the listener-leak warnings it printed. */
interface Owned {
  name: string;
  child: ChildProcess;
  pid: number;
  output: string;
  warnings: number;
  exited: boolean;
}

const owned: Owned[] = [];
let stopping = false;


function own(name: string, child: ChildProcess): Owned {
  const entry: Owned = { name, child, pid: child.pid!, output: "", warnings: 0, exited: false };
  const take = (chunk: Buffer) => {
    const text = chunk.toString();
    entry.warnings += text.split(WARNING).length - 1;
    entry.output = (entry.output + text).slice(-8000);
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
  child.on("exit", (code, signal) => {
    entry.exited = true;
    if (!stopping) console.error(`${name} exited early (code ${code}, signal ${signal}); last output:\n${entry.output}`);
  });
  owned.push(entry);
  return entry;
}

function startApp(name: string, entry: string, env: Record<string, string>): Owned {
  const child = spawn(process.execPath, ["--import", "tsx", join(root, entry)], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  return own(name, child);
}

async function startRole(name: string, roleName: string, concurrency: number): Promise<Owned> {
  const child = fork(import.meta.filename, [], {
    cwd: root,
    execArgv: ["--import", "tsx"],
    env: { ...process.env, FLEET_BENCH_ROLE: roleName, FLEET_BENCH_PREFIX: prefix, FLEET_BENCH_CONCURRENCY: String(concurrency), REDIS_URL: redisUrl },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const entry = own(name, child);
  await ask(entry, undefined, "ready", 60_000);
  return entry;
}

/** Sends a message to a forked role (or none) and waits for the reply of type `expect`. */
function ask<T>(entry: Owned, message: RoleMessage | undefined, expect: string, timeoutMs = 600_000): Promise<T> {
  return new Promise((resolveReply, reject) => {
    const timer = setTimeout(() => done(new Error(`${entry.name}: no '${expect}' within ${timeoutMs} ms\n${entry.output}`)), timeoutMs);
    const onMessage = (reply: { type: string } & Record<string, unknown>) => reply.type === expect && done(undefined, reply as T);
    const onExit = () => done(new Error(`${entry.name} exited\n${entry.output}`));
    function done(error: Error | undefined, value?: T) {
      clearTimeout(timer);
      entry.child.off("message", onMessage);
      entry.child.off("exit", onExit);
      if (error) reject(error);
      else resolveReply(value!);
    }
    entry.child.on("message", onMessage);
    entry.child.once("exit", onExit);
    if (message) entry.child.send(message);
  });
}

async function waitReady(name: string, url: string, until: (body: unknown) => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const body = await fetch(url).then(
      (response) => (response.ok ? response.json() : undefined),
      () => undefined,
    );
    if (body !== undefined && until(body)) return;
    await sleep(100);
  }
  throw new Error(`${name} did not become ready at ${url}`);
}

interface RedisSnapshot {
  cpuMs: number;
  calls: number;
  scripts: number;
}

async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const [cpu, stats] = await Promise.all([redis.info("cpu"), redis.info("commandstats")]);
  const seconds = Number(/used_cpu_user:([\d.]+)/.exec(cpu)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(cpu)?.[1]);
  let calls = 0;
  let scripts = 0;
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls += Number(match[2]);
    if (/^(eval|evalsha|evalsha_ro|eval_ro|fcall|fcall_ro)$/.test(match[1]!)) scripts += Number(match[2]);
  }
  return { cpuMs: seconds * 1000, calls, scripts };
}

/** What one side did in one measured run, per request. */
interface Measured {
  requests: number;
  errors: number;
  firstError?: string;
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  /** CPU of the side's processes. */
  processCpuUs: number;
  /** Redis CPU, net of the background rate. */
  redisCpuUs: number;
  /** Redis commands executed, net of the background rate. */
  redisCommands: number;
  /** Of which Lua script invocations. */
  redisScripts: number;
  /** CPU of this process (the HTTP client), not counted in `processCpuUs`. */
  clientCpuUs: number;
  /** Redis' idle rate just before and just after the run; the lower one was subtracted. */
  background: [Background, Background];
  /** Other clients' load changed around the run by more than the figures can absorb: Redis figures unreliable. */
  redisBusy: boolean;
}

interface Background {
  cpuMsPerSecond: number;
  callsPerSecond: number;
  scriptsPerSecond: number;
}

async function backgroundRate(redis: Redis): Promise<Background> {
  const before = await redisSnapshot(redis);
  const started = performance.now();
  await sleep(idleMs);
  const after = await redisSnapshot(redis);
  const seconds = (performance.now() - started) / 1000;
  return {
    cpuMsPerSecond: (after.cpuMs - before.cpuMs) / seconds,
    callsPerSecond: (after.calls - before.calls) / seconds,
    scriptsPerSecond: (after.scripts - before.scripts) / seconds,
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
const median = (values: number[]) => percentile(values, 50);

async function measured(redis: Redis, pids: number[], run: () => Promise<LoopResult>): Promise<Measured> {
  // Redis is shared (other clients, our idle heartbeats and polls). Others only add load, so the
  // quieter of the two windows around the run is the better estimate of what to take off.
  const idleBefore = await backgroundRate(redis);
  const cpuBefore = pids.map(processCpuMs);
  const clientBefore = process.cpuUsage();
  const redisBefore = await redisSnapshot(redis);
  const started = performance.now();
  const result = await run();
  const seconds = (performance.now() - started) / 1000;
  const redisAfter = await redisSnapshot(redis);
  const cpuAfter = pids.map(processCpuMs);
  const client = process.cpuUsage(clientBefore);
  const idleAfter = await backgroundRate(redis);
  const background: Background = {
    cpuMsPerSecond: Math.min(idleBefore.cpuMsPerSecond, idleAfter.cpuMsPerSecond),
    callsPerSecond: Math.min(idleBefore.callsPerSecond, idleAfter.callsPerSecond),
    scriptsPerSecond: Math.min(idleBefore.scriptsPerSecond, idleAfter.scriptsPerSecond),
  };
  const count = result.latencies.length + result.errors;
  const cpuMs = cpuAfter.reduce((sum, value, index) => sum + value - cpuBefore[index]!, 0);
  const redisCommands = (redisAfter.calls - redisBefore.calls - background.callsPerSecond * seconds) / count;
  // What the background's change could have added per request, against half a command or 5% of the figure;
  // changes under 200 commands/s are our own idle processes' heartbeats and polls, not another client.
  const change = Math.abs(idleBefore.callsPerSecond - idleAfter.callsPerSecond);
  const uncertainty = (change * seconds) / count;
  return {
    requests: count,
    errors: result.errors,
    ...(result.firstError ? { firstError: result.firstError } : {}),
    p50Ms: percentile(result.latencies, 50),
    p99Ms: percentile(result.latencies, 99),
    requestsPerSecond: count / (result.wallMs / 1000),
    processCpuUs: (cpuMs * 1000) / count,
    redisCpuUs: ((redisAfter.cpuMs - redisBefore.cpuMs - background.cpuMsPerSecond * seconds) * 1000) / count,
    redisCommands,
    redisScripts: (redisAfter.scripts - redisBefore.scripts - background.scriptsPerSecond * seconds) / count,
    clientCpuUs: (client.user + client.system) / count,
    background: [idleBefore, idleAfter],
    redisBusy: change > 200 && uncertainty > Math.max(0.5, 0.05 * Math.abs(redisCommands)),
  };
}

interface StreamSample {
  ttftMs: number;
  tokens: number;
  decodeMs: number;
  /** Tokens estimated to follow the first chunk: tokens × characters after it / all characters. */
  decodeTokens: number;
  /** Chunks with text: fewer than tokens where deltas were coalesced on the way. */
  chunks: number;
  /** Request to last token. */
  totalMs: number;
}

const prompts = [
  "Tell me a story about a lighthouse.",
  "Write a short poem about rain.",
  "Explain how a bicycle works.",
  "Describe your favourite meal.",
  "What is the capital of France?",
  "List three colours of the sky.",
];

async function streamOnce(client: OpenAI, prompt: string): Promise<StreamSample> {
  const started = performance.now();
  let first = 0;
  let last = 0;
  let tokens = 0;
  let chunks = 0;
  let firstCharacters = 0;
  let characters = 0;
  const stream = await client.chat.completions.create({
    model: MODEL_25M,
    messages: [{ role: "user", content: prompt }],
    temperature: 0,
    max_tokens: modelSettings.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of stream) {
    const text = chunk.choices[0]?.delta.content;
    if (text) {
      chunks++;
      characters += text.length;
      last = performance.now();
      if (first === 0) {
        first = last;
        firstCharacters = text.length;
      }
    }
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  const decodeTokens = characters > 0 ? (tokens * (characters - firstCharacters)) / characters : 0;
  return { ttftMs: first - started, tokens, decodeMs: last - first, decodeTokens, chunks, totalMs: last - started };
}

async function main(): Promise<void> {
  const benchStarted = performance.now();
  mkdirSync(workDir, { recursive: true });
  const admin = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  const pools: Pool[] = [];
  const configFiles: string[] = [];
  const loadBefore = loadavg()[0]!;
  try {
    await admin.ping();
    const tinyPath = await ensureTestModel("tiny", workDir);
    const path25m = await ensureTestModel("25m", workDir);
    const models = [
      { id: TINY, backend: "llama", source: tinyPath, ...modelSettings },
      { id: MODEL_25M, backend: "llama", source: path25m, ...modelSettings },
    ];
    // The fleet's catalog also lists the trivial model; the llama worker does not load it, the scripted worker serves its queue.
    const fleetModels = [
      ...models,
      { id: TRIVIAL, backend: "llama", source: tinyPath, ...modelSettings, maxWaiting: Math.max(256, connections * 2) },
      { id: TINY_ONE_SEQUENCE, backend: "llama", source: tinyPath, ...modelSettings, sequences: 1 },
    ];
    const [embeddedPort, gatewayPort, workerPort, oneSequenceWorkerPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const writeConfig = (name: string, port: number, list: object[]) => {
      const path = join(workDir, `fleet-overhead-${name}-${prefix}.json`);
      writeFileSync(path, JSON.stringify({ server: { host: "127.0.0.1", port, logLevel: "warn" }, modelsDir: workDir, models: list }));
      configFiles.push(path);
      return path;
    };
    const common = { HOST: "127.0.0.1", LOG_LEVEL: "warn", REDIS_URL: redisUrl, SWITCHBOARD_QUEUE_PREFIX: prefix };
    const embedded = startApp("embedded", "apps/embedded/src/main.ts", { ...common, PORT: String(embeddedPort), SWITCHBOARD_CONFIG: writeConfig("embedded", embeddedPort, models) });
    const fleetConfig = writeConfig("fleet", gatewayPort, fleetModels);
    const gateway = startApp("fleet gateway", "apps/gateway/src/main.ts", { ...common, PORT: String(gatewayPort), SWITCHBOARD_CONFIG: fleetConfig });
    const llamaWorker = startApp("llama worker", "apps/worker-llama/src/main.ts", {
      ...common,
      PORT: String(workerPort),
      SWITCHBOARD_CONFIG: fleetConfig,
      SWITCHBOARD_WORKER_MODELS: `${TINY},${MODEL_25M}`,
    });
    const oneSequenceWorker = startApp("llama worker (1 sequence)", "apps/worker-llama/src/main.ts", {
      ...common,
      PORT: String(oneSequenceWorkerPort),
      SWITCHBOARD_CONFIG: fleetConfig,
      SWITCHBOARD_WORKER_MODELS: TINY_ONE_SEQUENCE,
    });
    const [scriptedWorker, bareWorker, bareProducer] = await Promise.all([
      startRole("scripted worker", "scripted-worker", connections),
      startRole("bare worker", "bare-worker", connections),
      startRole("bare producer", "bare-producer", connections),
    ]);
    const embeddedUrl = `http://127.0.0.1:${embeddedPort}`;
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const isReady = (body: unknown) => (body as { status?: string }).status === "ready";
    await waitReady("embedded", `${embeddedUrl}/ready`, isReady);
    await waitReady("llama worker", `http://127.0.0.1:${workerPort}/ready`, () => true);
    await waitReady("llama worker (1 sequence)", `http://127.0.0.1:${oneSequenceWorkerPort}/ready`, () => true);
    // Ready once every model of the catalog has a live worker.
    await waitReady("fleet gateway", `${gatewayUrl}/ready`, isReady);
    console.log(`started in ${((performance.now() - benchStarted) / 1000).toFixed(1)} s; prefix ${prefix}`);

    const onePool = (url: string) => (pools.push(new Pool(url, { connections: 1 })), pools.at(-1)!);
    const manyPool = (url: string) => (pools.push(new Pool(url, { connections })), pools.at(-1)!);
    const embeddedOne = onePool(embeddedUrl);
    const gatewayOne = onePool(gatewayUrl);
    const gatewayMany = manyPool(gatewayUrl);
    const completion = (pool: Pool, model: string, prompt: string) => {
      const body = JSON.stringify({ model, prompt, max_tokens: 1, temperature: 0 });
      return async () => {
        const response = await pool.request({ path: "/v1/completions", method: "POST", headers: { "content-type": "application/json" }, body });
        const text = await response.body.text();
        if (response.statusCode !== 200) throw new Error(`${response.statusCode} ${text.slice(0, 200)}`);
      };
    };
    const bareRun = (count: number, inFlight: number) => () =>
      ask<{ result: LoopResult }>(bareProducer, { type: "run", requests: count, connections: inFlight }, "result").then((reply) => reply.result);

    type LatencySide = "in-process" | "fleet" | "fleet, 1 sequence" | "bare BullMQ";
    const latencySides: Record<LatencySide, { pids: number[]; run: (count: number) => () => Promise<LoopResult> }> = {
      "in-process": { pids: [embedded.pid], run: (count) => () => closedLoop(count, 1, completion(embeddedOne, TINY, "Hello")) },
      fleet: { pids: [gateway.pid, llamaWorker.pid], run: (count) => () => closedLoop(count, 1, completion(gatewayOne, TINY, "Hello")) },
      "fleet, 1 sequence": { pids: [gateway.pid, oneSequenceWorker.pid], run: (count) => () => closedLoop(count, 1, completion(gatewayOne, TINY_ONE_SEQUENCE, "Hello")) },
      "bare BullMQ": { pids: [bareProducer.pid, bareWorker.pid], run: (count) => bareRun(count, 1) },
    };
    type StreamSide = "in-process" | "fleet";
    const streamClients: Record<StreamSide, { pids: number[]; client: OpenAI }> = {
      "in-process": { pids: [embedded.pid], client: new OpenAI({ baseURL: `${embeddedUrl}/v1`, apiKey: "unused", maxRetries: 0 }) },
      fleet: { pids: [gateway.pid, llamaWorker.pid], client: new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: "unused", maxRetries: 0 }) },
    };
    type BurstSide = "fleet (trivial)" | "bare BullMQ";
    const burstSides: Record<BurstSide, { pids: number[]; run: (count: number) => () => Promise<LoopResult> }> = {
      "fleet (trivial)": { pids: [gateway.pid, scriptedWorker.pid], run: (count) => () => closedLoop(count, connections, completion(gatewayMany, TRIVIAL, "echo:1")) },
      "bare BullMQ": { pids: [bareProducer.pid, bareWorker.pid], run: (count) => bareRun(count, connections) },
    };

    const latency: Record<LatencySide, Measured[]> = { "in-process": [], fleet: [], "fleet, 1 sequence": [], "bare BullMQ": [] };
    const streaming: Record<StreamSide, { ttftMs: number[]; decodeRate: number[]; decodeRateTokensMinusOne: number[]; replyRate: number[]; tokens: number[]; chunksPerReply: number[]; processCpuUsPerReply: number[]; redisCommandsPerReply: number[]; redisBusy: boolean[] }> = {
      "in-process": { ttftMs: [], decodeRate: [], decodeRateTokensMinusOne: [], replyRate: [], tokens: [], chunksPerReply: [], processCpuUsPerReply: [], redisCommandsPerReply: [], redisBusy: [] },
      fleet: { ttftMs: [], decodeRate: [], decodeRateTokensMinusOne: [], replyRate: [], tokens: [], chunksPerReply: [], processCpuUsPerReply: [], redisCommandsPerReply: [], redisBusy: [] },
    };
    const throughput: Record<BurstSide, Measured[]> = { "fleet (trivial)": [], "bare BullMQ": [] };
    const addedP50: number[] = [];
    const addedP99: number[] = [];
    const addedP50OneSequence: number[] = [];
    const decodeRatio: number[] = [];
    const throughputRatio: number[] = [];

    const ordered = <T extends string>(sides: T[], round: number) => (round % 2 === 0 ? sides : [...sides].reverse());
    for (let round = 0; round < rounds; round++) {
      const roundLatency = {} as Record<LatencySide, Measured>;
      for (const side of ordered(Object.keys(latencySides) as LatencySide[], round)) {
        const { pids, run } = latencySides[side];
        await run(Math.min(50, requests))();
        roundLatency[side] = await measured(admin, pids, run(requests));
        latency[side].push(roundLatency[side]);
      }
      addedP50.push(roundLatency.fleet.p50Ms - roundLatency["in-process"].p50Ms);
      addedP99.push(roundLatency.fleet.p99Ms - roundLatency["in-process"].p99Ms);
      addedP50OneSequence.push(roundLatency["fleet, 1 sequence"].p50Ms - roundLatency["in-process"].p50Ms);

      const roundDecode = {} as Record<StreamSide, number>;
      for (const side of ordered(Object.keys(streamClients) as StreamSide[], round)) {
        const { pids, client } = streamClients[side];
        await streamOnce(client, prompts[0]!);
        const samples: StreamSample[] = [];
        const cost = await measured(admin, pids, () =>
          closedLoop(streams, 1, async () => {
            samples.push(await streamOnce(client, prompts[samples.length % prompts.length]!));
          }),
        );
        if (cost.errors > 0) throw new Error(`${side} streaming failed: ${cost.firstError}`);
        const decodeSeconds = samples.reduce((sum, sample) => sum + sample.decodeMs, 0) / 1000;
        const rate = samples.reduce((sum, sample) => sum + sample.decodeTokens, 0) / decodeSeconds;
        roundDecode[side] = rate;
        const row = streaming[side];
        row.decodeRate.push(rate);
        row.decodeRateTokensMinusOne.push(samples.reduce((sum, sample) => sum + sample.tokens - 1, 0) / decodeSeconds);
        // Tokens over request-to-last-token: not inflated when the first chunk carries several tokens.
        row.replyRate.push(samples.reduce((sum, sample) => sum + sample.tokens, 0) / (samples.reduce((sum, sample) => sum + sample.totalMs, 0) / 1000));
        row.ttftMs.push(median(samples.map((sample) => sample.ttftMs)));
        row.tokens.push(samples.reduce((sum, sample) => sum + sample.tokens, 0));
        row.chunksPerReply.push(samples.reduce((sum, sample) => sum + sample.chunks, 0) / samples.length);
        row.processCpuUsPerReply.push(cost.processCpuUs);
        row.redisCommandsPerReply.push(cost.redisCommands);
        row.redisBusy.push(cost.redisBusy);
      }
      decodeRatio.push(roundDecode.fleet / roundDecode["in-process"]);

      const roundBurst = {} as Record<BurstSide, Measured>;
      for (const side of ordered(Object.keys(burstSides) as BurstSide[], round)) {
        const { pids, run } = burstSides[side];
        await run(Math.min(200, burst))();
        roundBurst[side] = await measured(admin, pids, run(burst));
        throughput[side].push(roundBurst[side]);
      }
      throughputRatio.push(roundBurst["fleet (trivial)"].requestsPerSecond / roundBurst["bare BullMQ"].requestsPerSecond);

      console.log(
        `round ${round + 1}/${rounds}: 1-token p50 in-process ${roundLatency["in-process"].p50Ms.toFixed(2)} fleet ${roundLatency.fleet.p50Ms.toFixed(2)} ` +
          `bare ${roundLatency["bare BullMQ"].p50Ms.toFixed(2)} ms; decode in-process ${roundDecode["in-process"].toFixed(0)} fleet ${roundDecode.fleet.toFixed(0)} tok/s; ` +
          `${connections} conn fleet ${roundBurst["fleet (trivial)"].requestsPerSecond.toFixed(0)} bare ${roundBurst["bare BullMQ"].requestsPerSecond.toFixed(0)} req/s`,
      );
    }

    // Listener-leak warnings, every process: ours via 'warning', forked roles via 'warning' and stderr, apps via stderr.
    const warnings: Record<string, number> = { "bench (this process)": ownWarnings.filter((text) => text.startsWith(WARNING)).length };
    for (const entry of owned) {
      let count = entry.warnings;
      if (entry.child.connected) {
        const reply = await ask<{ warnings: string[] }>(entry, { type: "warnings" }, "warnings", 10_000);
        count = Math.max(count, reply.warnings.filter((text) => text.startsWith(WARNING)).length);
      }
      warnings[entry.name] = count;
    }
    const errors = [...Object.values(latency).flat(), ...Object.values(throughput).flat()].reduce((sum, run) => sum + run.errors, 0);

    report({ latency, streaming, throughput, addedP50, addedP99, addedP50OneSequence, decodeRatio, throughputRatio, warnings, errors, prefix, seconds: (performance.now() - benchStarted) / 1000, loadAverage: [loadBefore, loadavg()[0]!] });
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    await stopAll();
    await deleteKeys(admin);
    admin.disconnect();
    for (const path of configFiles) rmSync(path, { force: true });
  }
}

async function stopAll(): Promise<void> {
  stopping = true;
  await Promise.all(
    owned.map(async (entry) => {
      if (entry.exited) return;
      const exited = new Promise((resolveExit) => entry.child.once("exit", resolveExit));
      if (entry.child.connected) entry.child.send({ type: "stop" } satisfies RoleMessage);
      else entry.child.kill("SIGTERM");
      const timer = setTimeout(() => entry.child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}

/** Deletes this run's keys only (everything under its random prefix). */
async function deleteKeys(redis: Redis): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}

interface Report {
  latency: Record<string, Measured[]>;
  streaming: Record<string, { ttftMs: number[]; decodeRate: number[]; decodeRateTokensMinusOne: number[]; replyRate: number[]; tokens: number[]; chunksPerReply: number[]; processCpuUsPerReply: number[]; redisCommandsPerReply: number[]; redisBusy: boolean[] }>;
  throughput: Record<string, Measured[]>;
  addedP50: number[];
  addedP99: number[];
  /** The same with a worker of one sequence, whose BullMQ worker never fetches ahead: what the fetch-ahead costs. */
  addedP50OneSequence: number[];
  decodeRatio: number[];
  throughputRatio: number[];
  warnings: Record<string, number>;
  errors: number;
  prefix: string;
  seconds: number;
  /** 1-minute load average at the start and end: the machine is shared. */
  loadAverage: [number, number];
}

function report(result: Report): void {
  const digits = (value: number) => (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  const format = (value: number, places: number) => value.toFixed(places).replace(/^-(0(\.0+)?)$/, "$1");
  const cell = (values: number[], fixed?: number) => {
    if (values.length === 0) return "";
    const places = fixed ?? digits(median(values));
    return `${format(median(values), places)} (${format(Math.min(...values), places)}–${format(Math.max(...values), places)})`;
  };
  const of = (runs: Measured[] | undefined, key: keyof Measured) => (runs ?? []).map((run) => run[key] as number);
  /** A Redis figure, starred when other clients' load changed around one of its runs. */
  const redisCell = (runs: Measured[] | undefined, key: keyof Measured, places: number) => `${cell(of(runs, key), places)}${(runs ?? []).some((run) => run.redisBusy) ? "*" : ""}`;
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  const rows: string[][] = [["", "in-process", "fleet", "bare BullMQ", "target", ""]];
  const { latency, streaming, throughput } = result;
  const streamRedisCell = (side: string) => `${cell(streaming[side]!.redisCommandsPerReply, 1)}${streaming[side]!.redisBusy.some(Boolean) ? "*" : ""}`;
  rows.push(["1-token latency p50, ms (1 conn)", cell(of(latency["in-process"], "p50Ms")), cell(of(latency.fleet, "p50Ms")), cell(of(latency["bare BullMQ"], "p50Ms")), "", ""]);
  rows.push(["1-token latency p99, ms (1 conn)", cell(of(latency["in-process"], "p99Ms")), cell(of(latency.fleet, "p99Ms")), cell(of(latency["bare BullMQ"], "p99Ms")), "", ""]);
  rows.push(["fleet adds p50, ms", "", cell(result.addedP50), "", "≤ 1.5", verdict(median(result.addedP50) <= 1.5)]);
  rows.push(["fleet adds p99, ms", "", cell(result.addedP99), "", "aim ≤ 3", verdict(median(result.addedP99) <= 3)]);
  rows.push(["  same, worker with 1 sequence (p50), ms", "", cell(result.addedP50OneSequence), "", "", ""]);
  rows.push(["CPU/request, us (processes, 1 conn)", cell(of(latency["in-process"], "processCpuUs"), 0), cell(of(latency.fleet, "processCpuUs"), 0), cell(of(latency["bare BullMQ"], "processCpuUs"), 0), "", ""]);
  rows.push(["Redis CPU/request, us (1 conn)", redisCell(latency["in-process"], "redisCpuUs", 0), redisCell(latency.fleet, "redisCpuUs", 0), redisCell(latency["bare BullMQ"], "redisCpuUs", 0), "", ""]);
  rows.push(["Redis commands/request (1 conn)", redisCell(latency["in-process"], "redisCommands", 1), redisCell(latency.fleet, "redisCommands", 1), redisCell(latency["bare BullMQ"], "redisCommands", 1), "", ""]);
  rows.push(["  of which Lua scripts", redisCell(latency["in-process"], "redisScripts", 1), redisCell(latency.fleet, "redisScripts", 1), redisCell(latency["bare BullMQ"], "redisScripts", 1), "", ""]);
  rows.push(["25m time to first token p50, ms", cell(streaming["in-process"]!.ttftMs), cell(streaming.fleet!.ttftMs), "", "", ""]);
  rows.push(["25m decode tokens/s", cell(streaming["in-process"]!.decodeRate, 0), cell(streaming.fleet!.decodeRate, 0), "", "", ""]);
  rows.push(["25m reply tokens/s (request → last token)", cell(streaming["in-process"]!.replyRate, 0), cell(streaming.fleet!.replyRate, 0), "", "", ""]);
  rows.push(["25m decode fleet / in-process", "", cell(result.decodeRatio, 3), "", "≥ 0.9", verdict(median(result.decodeRatio) >= 0.9)]);
  rows.push(["25m CPU/reply, ms (processes)", cell(streaming["in-process"]!.processCpuUsPerReply.map((us) => us / 1000), 1), cell(streaming.fleet!.processCpuUsPerReply.map((us) => us / 1000), 1), "", "", ""]);
  rows.push(["25m text chunks/reply (tokens ~45)", cell(streaming["in-process"]!.chunksPerReply, 1), cell(streaming.fleet!.chunksPerReply, 1), "", "", ""]);
  rows.push(["25m Redis commands/reply", streamRedisCell("in-process"), streamRedisCell("fleet"), "", "", ""]);
  rows.push([`trivial req/s, ${connections} conn`, "", cell(of(throughput["fleet (trivial)"], "requestsPerSecond"), 0), cell(of(throughput["bare BullMQ"], "requestsPerSecond"), 0), "", ""]);
  rows.push([`trivial p99, ms (${connections} conn)`, "", cell(of(throughput["fleet (trivial)"], "p99Ms")), cell(of(throughput["bare BullMQ"], "p99Ms")), "", ""]);
  rows.push([`CPU/request, us (processes, ${connections} conn)`, "", cell(of(throughput["fleet (trivial)"], "processCpuUs"), 0), cell(of(throughput["bare BullMQ"], "processCpuUs"), 0), "", ""]);
  rows.push([`Redis CPU/request, us (${connections} conn)`, "", redisCell(throughput["fleet (trivial)"], "redisCpuUs", 0), redisCell(throughput["bare BullMQ"], "redisCpuUs", 0), "", ""]);
  rows.push([`HTTP client CPU/request, us (${connections} conn, not above)`, "", cell(of(throughput["fleet (trivial)"], "clientCpuUs"), 0), "", "", ""]);
  rows.push([`Redis commands/request (${connections} conn)`, "", redisCell(throughput["fleet (trivial)"], "redisCommands", 1), redisCell(throughput["bare BullMQ"], "redisCommands", 1), "", ""]);
  rows.push(["trivial req/s fleet / bare", "", cell(result.throughputRatio, 3), "", "≥ 0.7", verdict(median(result.throughputRatio) >= 0.7)]);
  const warningTotal = Object.values(result.warnings).reduce((sum, count) => sum + count, 0);
  rows.push([`${WARNING}s`, "", String(warningTotal), "", "0", verdict(warningTotal === 0)]);

  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  console.log(
    `\n== Fleet overhead: ${rounds} rounds; 1-token × ${requests} on tiny at 1 connection; ${streams} streamed replies on 25m; ` +
      `trivial × ${burst} at ${connections} connections (median (min–max) over rounds; ${modelSettings.threads} thread, ${modelSettings.sequences} sequences, context ${modelSettings.contextSize})`,
  );
  for (const row of rows) console.log(row.map((text, column) => (column === 0 ? text.padEnd(widths[column]!) : text.padStart(widths[column]!))).join("  "));
  const tokens = `${streaming["in-process"]!.tokens.join("/")} in-process, ${streaming.fleet!.tokens.join("/")} fleet`;
  console.log(`tokens per streaming run: ${tokens}; request errors: ${result.errors}; warnings by process: ${JSON.stringify(result.warnings)}`);
  const runs = [...Object.values(latency).flat(), ...Object.values(throughput).flat()];
  const backgrounds = runs.flatMap((run) => run.background);
  const busy = runs.filter((run) => run.redisBusy).length + Object.values(streaming).flatMap((row) => row.redisBusy).filter(Boolean).length;
  const streamRuns = Object.values(streaming).reduce((sum, row) => sum + row.redisBusy.length, 0);
  if (busy > 0) {
    console.log(
      `* other clients' load on Redis changed around ${busy} of ${runs.length + streamRuns} runs: those Redis figures are unreliable ` +
        "(for clean ones, point REDIS_URL at a Redis nothing else uses)",
    );
  }
  console.log(
    `Redis background (subtracted): ${median(backgrounds.map((background) => background.callsPerSecond)).toFixed(0)} commands/s, ` +
      `${median(backgrounds.map((background) => background.cpuMsPerSecond)).toFixed(1)} ms CPU/s; ` +
      `load average ${result.loadAverage.map((load) => load.toFixed(1)).join(" → ")}; run took ${result.seconds.toFixed(0)} s`,
  );
  const settings = { rounds, requests, streams, burst, connections, idleMs, modelSettings, redisUrl: redisUrl.replace(/\/\/[^@]*@/, "//***@") };
  writeFileSync(join(workDir, "fleet-overhead.json"), JSON.stringify({ settings, ...result }, null, 2));
  console.log(`wrote ${join(".switchboard", "bench", "fleet-overhead.json")}`);
}

if (role === "main") {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      stopping = true;
      for (const entry of owned) entry.child.kill("SIGKILL");
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      void deleteKeys(redis).finally(() => process.exit(130));
    });
  }
  await main();
  process.exit(0);
} else {
  await roleMain();
}
