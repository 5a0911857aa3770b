/**
 * The gateway as a proxy for a remote OpenAI-compatible chat model, against a
 * local mock upstream with no delay, interleaved in one run:
 *
 * - direct: the client calls the mock itself (the baseline);
 * - floor: a bare Fastify + undici pass-through (the floor for any Node gateway);
 * - switchboard embedded: one process, the remote model as `backend: hf` with
 *   `endpointUrl` on the mock, through @huggingface/inference (and, as a
 *   diagnostic, the same with metrics recording off);
 * - switchboard fleet: gateway and hf worker as two processes over BullMQ on
 *   Redis (`REDIS_URL`, else 127.0.0.1:6379; a random key prefix, deleted after);
 * - portkey: `@portkey-ai/gateway` 1.15.2 from npm, provider `openai` with its
 *   custom host on the mock. Node 20 needs a measurement-only preload shim
 *   (`bench/portkey-node20-shim.mjs`) for its streams to work at all.
 *
 *   pnpm bench:hf-proxy [--rounds 3] [--requests 400] [--seconds 3] [--targets direct,floor,embedded,embedded-no-metrics,fleet,portkey]
 *
 * Non-streaming and streaming (20 content chunks). Per target and mode:
 * requests/s at 50 connections (autocannon), latency p50/p99 and time to
 * first byte at one connection (sequential requests on one keep-alive
 * connection, undici), and CPU per request of the gateway's process(es),
 * read from /proc/<pid>/stat (user + system) over the 50-connection run
 * (and over the one-connection run). "Added" figures are against direct in
 * the same round. Figures are medians over rounds with [min–max]; every
 * server is a separate process; the load generator runs here, on the same
 * cores. Switchboard runs with log level `warn` (no per-request access log)
 * and its metrics on, as it ships.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import { Client } from "undici";

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index += 2) args.set(process.argv[index]!.replace(/^--/, ""), process.argv[index + 1] ?? "");
const rounds = Number(args.get("rounds") ?? 3);
const latencyRequests = Number(args.get("requests") ?? 400);
const seconds = Number(args.get("seconds") ?? 3);
const connections = Number(args.get("connections") ?? 50);
const wanted = (args.get("targets") ?? "direct,floor,embedded,embedded-no-metrics,fleet,portkey").split(",");
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const root = resolve(import.meta.dirname, "..");
const serversScript = join(root, "bench", "hf-proxy-servers.ts");
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

type Mode = "json" | "stream";

interface Target {
  name: string;
  origin: string;
  path: string;
  model: string;
  headers: Record<string, string>;
  /** Processes whose CPU counts as the gateway's. */
  pids: number[];
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  ttfb50: number;
  ttfb99: number;
  /** Gateway CPU per request at `connections`, microseconds. */
  cpuPerRequest: number;
  /** Gateway CPU per request at one connection, microseconds. */
  cpuPerRequestSerial: number;
  /** Per process, at `connections`. */
  cpuByProcess: number[];
  redisCpuPerRequest?: number;
  errors: number;
}

const children: ChildProcess[] = [];

function stop(): void {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
}
process.on("exit", stop);
process.on("SIGINT", () => {
  stop();
  process.exit(130);
});

/** Starts a role of bench/hf-proxy-servers.ts and waits for its `ready <port>`. */
async function startRole(role: string, options: Record<string, unknown>): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", serversScript, role, JSON.stringify(options)], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return await new Promise((resolvePort, reject) => {
    let stdout = "";
    const onData = (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /ready (\d+)/.exec(stdout);
      if (match) {
        child.stdout!.off("data", onData);
        child.stdout!.resume();
        resolvePort({ port: Number(match[1]), child });
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${role} exited with ${code}: ${stderr.slice(-2000)}`)));
  });
}

async function startPortkey(mockUrl: string): Promise<{ port: number; child: ChildProcess }> {
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const entry = join(root, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js");
  const child = spawn(process.execPath, ["--import", join(root, "bench", "portkey-node20-shim.mjs"), entry, `--port=${port}`, "--headless"], {
    cwd: root,
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  child.stderr!.resume();
  for (let tries = 0; tries < 200; tries++) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: "POST",
        headers: portkeyHeaders(mockUrl),
        body: JSON.stringify(requestBody("mock", "json")),
      });
      if (response.ok) return { port, child };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error("portkey did not start");
}

const portkeyHeaders = (mockUrl: string) => ({
  "content-type": "application/json",
  "x-portkey-provider": "openai",
  "x-portkey-custom-host": `${mockUrl}/v1`,
  authorization: "Bearer sk-unused",
});

function requestBody(model: string, mode: Mode) {
  return {
    model,
    messages: [{ role: "user", content: "Say twenty words." }],
    max_tokens: 32,
    ...(mode === "stream" ? { stream: true } : {}),
  };
}

/** User + system CPU of a process so far, microseconds. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

async function redisCpuMicros(redis: Redis | undefined): Promise<number | undefined> {
  if (!redis) return undefined;
  const info = await redis.info("cpu");
  const value = (key: string) => Number(new RegExp(`${key}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (value("used_cpu_sys") + value("used_cpu_user")) * 1e6;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Sequential requests on one keep-alive connection: latency and time to the first body byte, ms. */
async function measureSerial(target: Target, mode: Mode, count: number): Promise<{ latencies: number[]; ttfbs: number[]; cpu: number }> {
  const client = new Client(target.origin, { pipelining: 1 });
  const body = JSON.stringify(requestBody(target.model, mode));
  const latencies: number[] = [];
  const ttfbs: number[] = [];
  const cpuBefore = target.pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  try {
    for (let index = 0; index < count; index++) {
      const started = performance.now();
      const response = await client.request({ path: target.path, method: "POST", headers: target.headers, body });
      let first: number | undefined;
      let text = "";
      for await (const chunk of response.body) {
        first ??= performance.now();
        if (response.statusCode !== 200 || index === 0) text += chunk.toString();
      }
      const ended = performance.now();
      if (response.statusCode !== 200) throw new Error(`${target.name} ${mode}: HTTP ${response.statusCode} ${text.slice(0, 300)}`);
      if (index === 0 && !text.includes("word19")) throw new Error(`${target.name} ${mode}: the answer lacks the mock's text: ${text.slice(0, 300)}`);
      latencies.push(ended - started);
      ttfbs.push((first ?? ended) - started);
    }
  } finally {
    await client.close();
  }
  const cpu = target.pids.reduce((sum, pid) => sum + cpuMicros(pid), 0) - cpuBefore;
  return { latencies: latencies.sort((a, b) => a - b), ttfbs: ttfbs.sort((a, b) => a - b), cpu: cpu / count };
}

async function measureThroughput(target: Target, mode: Mode, duration: number, redis?: Redis) {
  const before = target.pids.map(cpuMicros);
  const redisBefore = await redisCpuMicros(redis);
  const result = await autocannon({
    url: `${target.origin}${target.path}`,
    method: "POST",
    headers: target.headers,
    body: JSON.stringify(requestBody(target.model, mode)),
    connections,
    duration,
  });
  const cpu = target.pids.map((pid, index) => cpuMicros(pid) - before[index]!);
  const redisAfter = await redisCpuMicros(redis);
  const ok = result["2xx"];
  return {
    rps: ok / (result.duration || duration),
    cpuByProcess: cpu.map((value) => value / Math.max(1, ok)),
    cpuPerRequest: cpu.reduce((a, b) => a + b, 0) / Math.max(1, ok),
    ...(redisBefore !== undefined && redisAfter !== undefined ? { redisCpuPerRequest: (redisAfter - redisBefore) / Math.max(1, ok) } : {}),
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

async function main(): Promise<void> {
  console.log(`hf-proxy benchmark: ${rounds} rounds, ${latencyRequests} sequential requests and ${seconds} s at ${connections} connections per target and mode`);
  const mock = await startRole("mock", {});
  const mockUrl = `http://127.0.0.1:${mock.port}`;
  const targets: Target[] = [];
  const jsonHeaders = { "content-type": "application/json" };
  let redis: Redis | undefined;
  const prefix = `sbbench-${randomUUID().slice(0, 8)}`;

  if (wanted.includes("direct")) targets.push({ name: "direct", origin: mockUrl, path: "/v1/chat/completions", model: "mock", headers: jsonHeaders, pids: [] });
  if (wanted.includes("floor")) {
    const floor = await startRole("floor", { mockUrl });
    targets.push({ name: "floor", origin: `http://127.0.0.1:${floor.port}`, path: "/v1/chat/completions", model: "mock", headers: jsonHeaders, pids: [floor.child.pid!] });
  }
  if (wanted.includes("embedded")) {
    const embedded = await startRole("embedded", { mockUrl });
    targets.push({ name: "embedded", origin: `http://127.0.0.1:${embedded.port}`, path: "/v1/chat/completions", model: "remote-chat", headers: jsonHeaders, pids: [embedded.child.pid!] });
  }
  if (wanted.includes("embedded-no-metrics")) {
    // Diagnostic: the same process with metrics recording off, to show what metrics cost.
    const bare = await startRole("embedded", { mockUrl, recordMetrics: false });
    targets.push({ name: "embedded-no-metrics", origin: `http://127.0.0.1:${bare.port}`, path: "/v1/chat/completions", model: "remote-chat", headers: jsonHeaders, pids: [bare.child.pid!] });
  }
  if (wanted.includes("fleet")) {
    redis = new Redis(redisUrl);
    const worker = await startRole("fleet-worker", { mockUrl, redisUrl, prefix });
    const gateway = await startRole("fleet-gateway", { mockUrl, redisUrl, prefix });
    targets.push({
      name: "fleet",
      origin: `http://127.0.0.1:${gateway.port}`,
      path: "/v1/chat/completions",
      model: "remote-chat",
      headers: jsonHeaders,
      pids: [gateway.child.pid!, worker.child.pid!],
    });
  }
  if (wanted.includes("portkey")) {
    const portkey = await startPortkey(mockUrl);
    targets.push({ name: "portkey", origin: `http://127.0.0.1:${portkey.port}`, path: "/v1/chat/completions", model: "mock", headers: portkeyHeaders(mockUrl), pids: [portkey.child.pid!] });
  }

  // Warm every target up (JIT, connection pools, the fleet's worker liveness).
  for (const target of targets) {
    for (const mode of ["json", "stream"] as const) {
      for (let tries = 0; ; tries++) {
        try {
          await measureSerial(target, mode, 50);
          break;
        } catch (error) {
          if (tries > 50) throw error;
          await sleep(200);
        }
      }
      await measureThroughput(target, mode, 1, redis);
    }
  }

  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < rounds; round++) {
    for (const mode of ["json", "stream"] as const) {
      // Rotate the order every round, so no target always runs first or last.
      const order = targets.map((_, index) => targets[(index + round) % targets.length]!);
      for (const target of order) {
        const serial = await measureSerial(target, mode, latencyRequests);
        const throughput = await measureThroughput(target, mode, seconds, target.name === "fleet" ? redis : undefined);
        const key = `${target.name}/${mode}`;
        const list = samples.get(key) ?? [];
        list.push({
          rps: throughput.rps,
          p50: percentile(serial.latencies, 50),
          p99: percentile(serial.latencies, 99),
          ttfb50: percentile(serial.ttfbs, 50),
          ttfb99: percentile(serial.ttfbs, 99),
          cpuPerRequest: throughput.cpuPerRequest,
          cpuPerRequestSerial: serial.cpu,
          cpuByProcess: throughput.cpuByProcess,
          ...(throughput.redisCpuPerRequest !== undefined ? { redisCpuPerRequest: throughput.redisCpuPerRequest } : {}),
          errors: throughput.errors,
        });
        samples.set(key, list);
        process.stdout.write(`  round ${round + 1} ${key}: ${throughput.rps.toFixed(0)} req/s, p50 ${percentile(serial.latencies, 50).toFixed(3)} ms\n`);
      }
    }
  }

  report(targets, samples);
  if (redis) {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
    redis.disconnect();
  }
  stop();
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};
const spread = (values: number[], digits: number) => `${median(values).toFixed(digits)} [${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}]`;

/** Median [min–max] over rounds of a / b in CPU per request. */
function pairedRatio(a: Sample[] | undefined, b: Sample[] | undefined): string {
  if (!a || !b || a.length !== b.length || a.length === 0) return "n/a";
  return spread(a.map((sample, index) => sample.cpuPerRequest / b[index]!.cpuPerRequest), 2);
}

function report(targets: Target[], samples: Map<string, Sample[]>): void {
  const summary: Record<string, unknown> = {};
  for (const mode of ["json", "stream"] as const) {
    const direct = samples.get(`direct/${mode}`);
    console.log(`\n${mode === "json" ? "Non-streaming" : "Streaming (20 chunks)"}: median [min–max] over ${rounds} rounds`);
    console.log(
      ["target", `req/s @${connections}`, "p50 ms", "added p50", "p99 ms", "added p99", "TTFB p50", "added TTFB", "CPU us/req @50", "CPU us/req @1"].map((h) => h.padEnd(24)).join(""),
    );
    for (const target of targets) {
      const list = samples.get(`${target.name}/${mode}`)!;
      // Added latency per round against direct in the same round, then the median of those.
      const added = (pick: (sample: Sample) => number) => (direct ? list.map((sample, index) => pick(sample) - pick(direct[index]!)) : undefined);
      const addedP50 = added((sample) => sample.p50);
      const addedP99 = added((sample) => sample.p99);
      const addedTtfb = added((sample) => sample.ttfb50);
      const cpu = target.pids.length ? spread(list.map((sample) => sample.cpuPerRequest), 0) : "-";
      const cpuSerial = target.pids.length ? spread(list.map((sample) => sample.cpuPerRequestSerial), 0) : "-";
      console.log(
        [
          target.name,
          spread(list.map((sample) => sample.rps), 0),
          spread(list.map((sample) => sample.p50), 3),
          addedP50 && target.name !== "direct" ? spread(addedP50, 3) : "-",
          spread(list.map((sample) => sample.p99), 3),
          addedP99 && target.name !== "direct" ? spread(addedP99, 3) : "-",
          spread(list.map((sample) => sample.ttfb50), 3),
          addedTtfb && target.name !== "direct" ? spread(addedTtfb, 3) : "-",
          cpu,
          cpuSerial,
        ]
          .map((cell) => cell.padEnd(24))
          .join(""),
      );
      if (target.name === "fleet") {
        const perProcess = ["gateway", "worker"].map((name, index) => `${name} ${median(list.map((sample) => sample.cpuByProcess[index]!)).toFixed(0)}`);
        const redisCpu = list.map((sample) => sample.redisCpuPerRequest ?? 0);
        console.log(`  fleet CPU us/req by process: ${perProcess.join(", ")}; Redis (shared with other users of this Redis) ${median(redisCpu).toFixed(0)}`);
      }
      const errors = list.reduce((sum, sample) => sum + sample.errors, 0);
      if (errors > 0) console.log(`  ${target.name}: ${errors} failed requests during the ${connections}-connection runs`);
      summary[`${target.name}/${mode}`] = {
        rps: median(list.map((sample) => sample.rps)),
        p50Ms: median(list.map((sample) => sample.p50)),
        p99Ms: median(list.map((sample) => sample.p99)),
        ttfbP50Ms: median(list.map((sample) => sample.ttfb50)),
        addedP50Ms: addedP50 ? median(addedP50) : undefined,
        addedP99Ms: addedP99 ? median(addedP99) : undefined,
        addedTtfbMs: addedTtfb ? median(addedTtfb) : undefined,
        cpuMicrosPerRequest: target.pids.length ? median(list.map((sample) => sample.cpuPerRequest)) : undefined,
        cpuMicrosPerRequestSerial: target.pids.length ? median(list.map((sample) => sample.cpuPerRequestSerial)) : undefined,
        samples: list,
      };
    }
  }

  const get = (key: string, field: string) => (summary[key] as Record<string, number> | undefined)?.[field];
  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : "n/a");
  console.log("\nRatios and targets (Switchboard embedded):");
  console.log(`  non-streaming added p50 ${get("embedded/json", "addedP50Ms")?.toFixed(3)} ms (target <= 0.5)`);
  console.log(`  non-streaming CPU/request ${get("embedded/json", "cpuMicrosPerRequest")?.toFixed(0)} us (target <= 250); floor ${get("floor/json", "cpuMicrosPerRequest")?.toFixed(0)} us`);
  console.log(`  Portkey CPU / Switchboard CPU per request (non-streaming): ${ratio(get("portkey/json", "cpuMicrosPerRequest"), get("embedded/json", "cpuMicrosPerRequest"))}x (target >= 4)`);
  console.log(`  streaming added TTFB ${get("embedded/stream", "addedTtfbMs")?.toFixed(3)} ms (target <= 0.5)`);
  console.log(`  streaming CPU/stream vs floor: ${ratio(get("embedded/stream", "cpuMicrosPerRequest"), get("floor/stream", "cpuMicrosPerRequest"))}x (target <= 2)`);
  // Rounds run the targets back to back: a ratio within each round cancels what the machine did meanwhile.
  console.log(`  the same, paired by round: ${pairedRatio(samples.get("embedded/stream"), samples.get("floor/stream"))}x`);
  console.log(`  requests/s embedded / floor: json ${ratio(get("embedded/json", "rps"), get("floor/json", "rps"))}, stream ${ratio(get("embedded/stream", "rps"), get("floor/stream", "rps"))}`);
  console.log(`  requests/s embedded / portkey: json ${ratio(get("embedded/json", "rps"), get("portkey/json", "rps"))}, stream ${ratio(get("embedded/stream", "rps"), get("portkey/stream", "rps"))}`);
  if (wanted.includes("portkey")) console.log("  Portkey ran with bench/portkey-node20-shim.mjs preloaded (re-wraps event-stream fetch responses with mutable headers; without it its streams fail on Node 20).");

  const out = join(root, ".switchboard", "bench");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "hf-proxy.json"), JSON.stringify({ rounds, latencyRequests, seconds, connections, node: process.version, summary }, null, 2));
  console.log(`\nraw figures: .switchboard/bench/hf-proxy.json`);
}

await main().catch((error: unknown) => {
  console.error(error);
  stop();
  process.exit(1);
});
