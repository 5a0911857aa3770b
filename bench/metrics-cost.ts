/**
 * What metrics cost: requests/s and p99 latency of the gateway with metrics
 * recording on vs off, interleaved in one run, with the spread across rounds.
 *
 *   pnpm bench:metrics [--rounds 8] [--seconds 3] [--connections 16] [--workloads scripted,scripted-stream,tiny] [--aa] [--fresh] [--one-process] [--together]
 *   pnpm bench:metrics --instructions [requests] [--warmup 16000] [--workloads scripted,scripted-stream] [--cache-sim] [--by-function]
 *
 * `--aa` runs both sides with metrics off: the "cost" it reports is the
 * noise floor of this machine, to read the real figures against.
 *
 * `--together` loads both sides at the same time in every round, each with
 * its own `--connections`, instead of one after the other. On a shared host
 * whose speed changes from second to second (rounds of one side served
 * 5,800 to 15,800 requests/s within an hour), back-to-back rounds see
 * different machines: A/A runs gave -0.3% to +37% CPU per request. Loaded
 * together, both sides see the same machine, and A/A runs gave -3.1% to
 * +2.0% (paired rounds' medians -0.5% to +1.2%). CPU per
 * request is then the figure to read: the two sides and the load generator
 * share the same cores, so requests/s and p99 are bounded by the generator
 * and by how the scheduler shares the cores, more than by either server.
 *
 * `--one-process` (scripted workloads) serves both sides from one process,
 * each on its own port: the same compiled code and the same slow or quick
 * phase of a shared host for both, where separate processes differ in how
 * V8 happened to compile each. Only one side is loaded at a time, so the
 * process's CPU time during a side's round is that side's.
 *
 * `--instructions [requests]` counts instead of timing: each side runs under
 * valgrind's callgrind (Debian package `valgrind`) and reports the CPU
 * instructions its process (all threads) executes per request, counted over
 * `requests` (default 1000) after `--warmup` requests (default 16,000).
 * Unlike requests/s and CPU time, the count does not move with the load of a
 * shared machine. What does move it is V8 still optimizing: with `--trace-opt`
 * a server of this benchmark stops compiling after 12,000-16,000 requests,
 * and compilations that land in the counted window (TurboFan runs on a
 * background thread, counted too) made up to a third of the instructions and
 * swung the "on" side by 25% between runs. Fresh connections at the start of
 * the window did the same (Node's HTTP and stream code deoptimized on the new
 * sockets and was compiled again), so warm-up and count share one set of
 * connections. Each count is also reported without the optimizing
 * compilers' own functions (`v8::internal::compiler::`, Maglev): what is
 * left of compiling shows there.
 *
 * `--cache-sim` (with `--instructions`) also runs callgrind's cache and
 * branch simulation and reports, per request, the L1 instruction- and
 * data-cache misses and the mispredicted branches of each side: where a
 * timed run costs more than the instructions explain, these say whether
 * the extra code misses and mispredicts more often than the rest.
 *
 * `--by-function` (with `--instructions`) also says where the difference
 * goes: each side's server runs with V8's `--perf-basic-prof`, whose map
 * names the JavaScript functions at the addresses callgrind counted, and the
 * difference is printed by part of the process (the gateway's hooks, the job
 * runner, the metrics package, the in-process queue, Node, V8, libc) and by
 * function: instructions, and with `--cache-sim` L1 misses and mispredicted
 * branches.
 *
 * Each side is its own child process, alive for the whole run; rounds
 * alternate which side goes first. `--fresh` starts a new pair of processes
 * (and warms them up) every round: how V8 happened to compile one process
 * otherwise biases a whole run one way (two quiet runs of the same code gave
 * +0.1% and +5.4% CPU per request), and fresh pairs average that out. "On" is the full composition: the
 * gateway's request and job hooks, the in-process transport's queue metrics
 * and worker metrics (tokens, decode speed), all on one registry. "Off" builds
 * the same app with `recordMetrics: false` (`/metrics` still serves process
 * metrics). Workloads:
 *
 * - `scripted`: non-streamed chat answered by a scripted in-process backend
 *   (16 text deltas, no model), so the gateway's own cost dominates;
 * - `scripted-stream`: the same, streamed as SSE (one frame per delta);
 * - `tiny`: non-streamed chat on the generated tiny GGUF (max_tokens 16),
 *   where the model dominates.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseConfig } from "../packages/catalog/src/index.js";
import type { Backend, Job, JobContext, JobEvent, ModelState } from "../packages/protocol/src/index.js";
import { addFunctionCosts, partOf, readPerfMap, type FunctionCosts } from "./callgrind-functions.js";

type Side = "on" | "off";
/** What a server child serves: one side, or (`--one-process`) both on two ports. */
type Served = Side | "both";
type Workload = "scripted" | "scripted-stream" | "tiny";

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index++) {
  const name = process.argv[index]!.replace(/^--/, "");
  const value = process.argv[index + 1];
  // A flag without a value (`--aa`) is followed by another flag or nothing.
  if (value === undefined || value.startsWith("--")) args.set(name, "");
  else args.set(name, process.argv[++index]!);
}

const SCRIPTED_MODEL = "bench/scripted";
const TINY_MODEL = "bench-tiny";
const DELTAS = 16;

/** A backend that answers every chat at once: accepted, 16 deltas, finish. No model. */
class ScriptedBackend implements Backend {
  readonly name = "llama";
  models(): string[] {
    return [SCRIPTED_MODEL];
  }
  modelStates(): ModelState[] {
    return [{ id: SCRIPTED_MODEL, state: "ready" }];
  }
  async *run(job: Job, _context: JobContext): AsyncIterable<JobEvent> {
    yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 9 };
    for (let index = 0; index < DELTAS; index++) yield { type: "text-delta", index: 0, text: "word " };
    yield { type: "finish", index: 0, finishReason: "stop", completionTokens: DELTAS };
  }
  async close(): Promise<void> {}
}

/** Child mode: serve one side of one workload (or both), print the port(s), run until killed. */
async function serve(workload: Workload, served: Served): Promise<void> {
  if (served === "both") {
    if (workload === "tiny") throw new Error("--one-process serves the scripted workloads only");
    const on = await scriptedServer(true);
    const off = await scriptedServer(false);
    process.stdout.write(`PORTS ${on} ${off}\n`);
    return;
  }
  const record = served === "on";
  if (workload !== "tiny") {
    process.stdout.write(`PORT ${await scriptedServer(record)}\n`);
    return;
  }
  const modelsDir = mkdtempSync(join(tmpdir(), "switchboard-bench-metrics-"));
  const { createEmbeddedServer } = await import("../apps/embedded/src/embedded.js");
  const config = parseConfig(
    { server: { logLevel: "silent" }, modelsDir, models: [{ id: TINY_MODEL, backend: "llama", source: "generated:tiny", contextSize: 1024, sequences: 4, maxWaiting: 256 }] },
    { env: {}, baseDir: modelsDir },
  );
  const server = await createEmbeddedServer({ config, recordMetrics: record });
  await server.backend.whenReady(TINY_MODEL);
  const address = await server.app.listen({ port: 0, host: "127.0.0.1" });
  process.stdout.write(`PORT ${new URL(address).port}\n`);
}

/** A gateway over the scripted backend, with or without metrics recording; returns its port. */
async function scriptedServer(record: boolean): Promise<number> {
  const modelsDir = mkdtempSync(join(tmpdir(), "switchboard-bench-metrics-"));
  const { buildGateway } = await import("../apps/gateway/src/index.js");
  const { Catalog } = await import("../packages/catalog/src/index.js");
  const { InProcessDispatcher } = await import("../packages/queue/src/index.js");
  const { createMetrics } = await import("../packages/metrics/src/index.js");
  const config = parseConfig(
    { server: { logLevel: "silent" }, modelsDir, models: [{ id: SCRIPTED_MODEL, backend: "llama", source: "generated:tiny", contextSize: 1024 }] },
    { env: {}, baseDir: modelsDir },
  );
  const metrics = createMetrics({ models: config.models });
  const backend: Backend = new ScriptedBackend();
  const dispatcher = new InProcessDispatcher({ backends: [backend], ...(record ? { metrics: metrics.queue } : {}) });
  const app = await buildGateway({ config, catalog: new Catalog(config), dispatcher, metrics, recordMetrics: record });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  return Number(new URL(address).port);
}

interface Server {
  port: number;
  child: ChildProcess;
}

async function startServer(workload: Workload, side: Side, wrapper: string[] = [], nodeFlags: string[] = []): Promise<Server> {
  // An A/A run: the "on" side records nothing either.
  const { child, ports } = await startServing(workload, args.has("aa") ? "off" : side, wrapper, nodeFlags);
  return { port: ports[0]!, child };
}

/** A server child and the port(s) it printed: one, or on and off for `both`. */
function startServing(workload: Workload, served: Served, wrapper: string[] = [], nodeFlags: string[] = []): Promise<{ child: ChildProcess; ports: number[] }> {
  return new Promise((resolve, reject) => {
    const command = [...wrapper, process.execPath, ...nodeFlags, "--import", "tsx", import.meta.filename, "--serve", `${workload}:${served}`];
    const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", wrapper.length > 0 ? "ignore" : "inherit"] });
    child.stdout!.setEncoding("utf8");
    let output = "";
    child.stdout!.on("data", (chunk: string) => {
      output += chunk;
      const match = /PORTS? ([\d ]+)\n/.exec(output);
      if (match) resolve({ child, ports: match[1]!.trim().split(" ").map(Number) });
    });
    child.once("exit", (code) => reject(new Error(`${workload}:${served} server exited with ${code}`)));
  });
}

interface RoundResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the server process per request, microseconds: steadier than throughput on a shared machine. */
  cpuMicrosPerRequest: number;
  errors: number;
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * `connections` closed loops of requests for `seconds` (or `count` requests in all), over keep-alive
 * sockets: the caller's (`shared`, left open), or fresh ones closed at the end.
 */
async function load(server: Server, workload: Workload, seconds: number, connections: number, count = Infinity, shared?: Agent): Promise<RoundResult> {
  const port = server.port;
  const agent = shared ?? new Agent({ keepAlive: true, maxSockets: connections });
  let sent = 0;
  const body = JSON.stringify({
    model: workload === "tiny" ? TINY_MODEL : SCRIPTED_MODEL,
    messages: [{ role: "user", content: "How does a switchboard work?" }],
    max_tokens: 16,
    ...(workload === "scripted-stream" ? { stream: true } : {}),
  });
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const outgoing = httpRequest({ host: "127.0.0.1", port, path: "/v1/chat/completions", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (incoming) => {
        incoming.on("data", () => {});
        incoming.on("end", () => {
          if (incoming.statusCode === 200) latencies.push(performance.now() - started);
          else errors++;
          resolve();
        });
      });
      outgoing.on("error", () => {
        errors++;
        resolve();
      });
      outgoing.end(body);
    });
  const started = performance.now();
  const cpuBefore = cpuSeconds(server.child.pid!);
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline && sent++ < count) await one();
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(server.child.pid!) - cpuBefore;
  if (!shared) agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requestsPerSecond: latencies.length / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    cpuMicrosPerRequest: (cpu * 1e6) / Math.max(1, latencies.length),
    errors,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Pairs of server processes started so far in this run. */
let pairsStarted = 0;

async function startPair(workload: Workload, seconds: number, connections: number): Promise<Record<Side, Server>> {
  // Which side starts and warms up first alternates from pair to pair: in A/A runs the first started was the slower by 2-3%.
  const order: Side[] = pairsStarted++ % 2 === 0 ? ["on", "off"] : ["off", "on"];
  let servers: Record<Side, Server>;
  if (args.has("one-process")) {
    const { child, ports } = await startServing(workload, args.has("aa") ? "off" : "both");
    // An A/A run in one process loads one "off" app from both sides.
    servers = { on: { port: ports[0]!, child }, off: { port: ports[1] ?? ports[0]!, child } };
  } else {
    servers = {} as Record<Side, Server>;
    for (const side of order) servers[side] = await startServer(workload, side);
  }
  for (const side of order) await load(servers[side], workload, Math.min(2, seconds), connections); // warm-up (JIT, pools)
  return servers;
}

function stopPair(servers: Record<Side, Server> | undefined): void {
  for (const server of Object.values(servers ?? {})) server.child.kill("SIGKILL");
}

async function measure(workload: Workload, rounds: number, seconds: number, connections: number, fresh: boolean, together: boolean) {
  let servers: Record<Side, Server> | undefined;
  try {
    const results: Record<Side, RoundResult[]> = { on: [], off: [] };
    for (let round = 0; round < rounds; round++) {
      if (fresh || servers === undefined) {
        stopPair(servers);
        servers = await startPair(workload, seconds, connections);
      }
      if (together) {
        // Both sides at once, under the same load on the shared host.
        const [on, off] = await Promise.all([load(servers.on, workload, seconds, connections), load(servers.off, workload, seconds, connections)]);
        results.on.push(on);
        results.off.push(off);
        await sleep(200);
        continue;
      }
      const order: Side[] = round % 2 === 0 ? ["on", "off"] : ["off", "on"];
      for (const side of order) {
        results[side].push(await load(servers[side], workload, seconds, connections));
        await sleep(200);
      }
    }
    const summary = (side: Side) => {
      const rps = results[side].map((result) => result.requestsPerSecond);
      const p99 = results[side].map((result) => result.p99Ms);
      return {
        requestsPerSecond: { median: median(rps), min: Math.min(...rps), max: Math.max(...rps) },
        p50Ms: median(results[side].map((result) => result.p50Ms)),
        p99Ms: { median: median(p99), min: Math.min(...p99), max: Math.max(...p99) },
        cpuMicrosPerRequest: median(results[side].map((result) => result.cpuMicrosPerRequest)),
        errors: results[side].reduce((sum, result) => sum + result.errors, 0),
      };
    };
    const on = summary("on");
    const off = summary("off");
    // Paired by round (each round runs both sides, back to back or together): the per-round difference and its spread.
    const paired = results.on.map((result, index) => 1 - result.requestsPerSecond / results.off[index]!.requestsPerSecond);
    const pairedCpu = results.on.map((result, index) => result.cpuMicrosPerRequest / results.off[index]!.cpuMicrosPerRequest - 1);
    return {
      workload,
      rounds,
      seconds,
      connections,
      on,
      off,
      throughputCostPercent: {
        median: 100 * (1 - on.requestsPerSecond.median / off.requestsPerSecond.median),
        pairedMedian: 100 * median(paired),
        pairedMin: 100 * Math.min(...paired),
        pairedMax: 100 * Math.max(...paired),
      },
      p99CostPercent: 100 * (on.p99Ms.median / off.p99Ms.median - 1),
      cpuCostPercent: 100 * (on.cpuMicrosPerRequest / off.cpuMicrosPerRequest - 1),
      pairedCpuCostPercent: { median: 100 * median(pairedCpu), min: 100 * Math.min(...pairedCpu), max: 100 * Math.max(...pairedCpu) },
    };
  } finally {
    stopPair(servers);
  }
}

interface InstructionCount {
  /** Per request, everything the process executed in the window. */
  total: number;
  /** Per request, the part spent in V8's optimizing compilers. */
  compiling: number;
  /** Per request, every event callgrind counted (`Ir`, and with `--cache-sim` `I1mr`, `D1mr`, `Bcm`, ...). */
  events: Record<string, number>;
  /** With `--by-function`: per event, each function's own count over the window (not per request). */
  functions?: Map<string, FunctionCosts>;
}

/** Valgrind runs the program in its own process: the server's pid is the child's. */
function perfMap(server: Server): string {
  return `/tmp/perf-${server.child.pid}.map`;
}

/** The events `--by-function` attributes: instructions, and with `--cache-sim` L1 misses and mispredicted branches. */
const FUNCTION_EVENTS = ["Ir", "I1mr", "D1mr", "Bcm"];

/**
 * Where the difference between the sides goes, per request, for each event
 * counted: by part of the process (the metrics' own code, and what it makes
 * V8, Node and libc do), then the 20 functions that differ most.
 */
function printByFunction(on: Map<string, FunctionCosts>, off: Map<string, FunctionCosts>, requests: number): void {
  const events = FUNCTION_EVENTS.filter((event) => on.has(event));
  const names = new Set(events.flatMap((event) => [...on.get(event)!.keys(), ...(off.get(event)?.keys() ?? [])]));
  const differenceOf = (event: string, name: string) => ((on.get(event)!.get(name) ?? 0) - (off.get(event)?.get(name) ?? 0)) / requests;
  const rows = [...names].map((name) => ({ name, differences: events.map((event) => differenceOf(event, name)) }));
  const columns = (values: number[]) => values.map((value) => value.toFixed(value > -10 && value < 10 ? 1 : 0).padStart(7)).join(" ");
  const header = events.map((event) => event.padStart(7)).join(" ");
  const parts = new Map<string, number[]>();
  for (const row of rows) {
    const part = partOf(row.name);
    const sums = parts.get(part) ?? events.map(() => 0);
    row.differences.forEach((value, index) => (sums[index]! += value));
    parts.set(part, sums);
  }
  console.log(`  on - off per request, by part of the process:\n  ${header}`);
  for (const [part, sums] of [...parts].sort((a, b) => b[1][0]! - a[1][0]!)) console.log(`  ${columns(sums)}  ${part}`);
  console.log(`  the 20 functions that differ most in instructions:\n  ${header}`);
  const largest = rows.sort((a, b) => Math.abs(b.differences[0]!) - Math.abs(a.differences[0]!)).slice(0, 20);
  for (const row of largest) console.log(`  ${columns(row.differences)}  ${row.name.slice(0, 120)}`);
}

/** The events a callgrind output file counts (its `events:` line) with their totals. */
function callgrindTotals(text: string): Record<string, number> {
  const names = /^events: (.+)$/m.exec(text)?.[1]!.trim().split(/\s+/) ?? [];
  const values = /^totals: (.+)$/m.exec(text)?.[1]!.trim().split(/\s+/).map(Number) ?? [];
  return Object.fromEntries(names.map((name, index) => [name, values[index] ?? 0]));
}

/** Instructions counted in V8's optimizing compilers' own functions, of a profile's instructions by function. */
function compilerInstructions(instructions: FunctionCosts): number {
  let compiling = 0;
  for (const [name, count] of instructions) if (/v8::internal::(compiler::|maglev::|Compiler::|turboshaft::)/.test(name)) compiling += count;
  return compiling;
}

/**
 * Instructions per request of one side: its server runs under callgrind with
 * counting off, is warmed up, then counted over `requests` requests only.
 */
async function instructionsPerRequest(workload: Workload, side: Side, requests: number, warmup: number): Promise<InstructionCount> {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-bench-callgrind-"));
  const simulate = args.has("cache-sim") ? ["--cache-sim=yes", "--branch-sim=yes"] : [];
  const byFunction = args.has("by-function");
  // V8 writes where it put each compiled function to /tmp/perf-<pid>.map, and its log (unused) into `dir`.
  const nodeFlags = byFunction ? ["--perf-basic-prof", "--no-logfile-per-isolate", `--logfile=${join(dir, "v8.log")}`] : [];
  const server = await startServer(workload, side, ["valgrind", "--tool=callgrind", ...simulate, "--instr-atstart=no", `--callgrind-out-file=${join(dir, "out")}`], nodeFlags);
  const pid = String(server.child.pid);
  const connections = workload === "tiny" ? 2 : 4;
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  try {
    // One set of connections for the warm-up and the count: new sockets in the counted window
    // deoptimized Node's HTTP and stream code ("wrong map") and it was optimized again there.
    await load(server, workload, 3600, connections, warmup, agent);
    execFileSync("callgrind_control", ["--instr=on", pid], { stdio: "ignore" });
    const result = await load(server, workload, 600, connections, requests, agent);
    execFileSync("callgrind_control", ["--instr=off", pid], { stdio: "ignore" });
    execFileSync("callgrind_control", ["--dump", pid], { stdio: "ignore" });
    if (result.errors > 0) throw new Error(`${workload}:${side}: ${result.errors} requests failed`);
    const events: Record<string, number> = {};
    // Per event, each function's count; instructions always (they give the compilers' share).
    const functions = new Map<string, FunctionCosts>([["Ir", new Map()]]);
    const code = byFunction ? readPerfMap(perfMap(server)) : [];
    for (const file of readdirSync(dir).filter((name) => name.startsWith("out"))) {
      const path = join(dir, file);
      const totals = callgrindTotals(readFileSync(path, "utf8"));
      if (!totals.Ir) continue;
      for (const [name, value] of Object.entries(totals)) events[name] = (events[name] ?? 0) + value / requests;
      for (const event of byFunction ? FUNCTION_EVENTS.filter((name) => name in totals) : ["Ir"]) {
        if (!functions.has(event)) functions.set(event, new Map());
        addFunctionCosts(functions.get(event)!, path, event, code);
      }
    }
    const compiling = compilerInstructions(functions.get("Ir")!) / requests;
    return { total: events.Ir ?? 0, compiling, events, ...(byFunction ? { functions } : {}) };
  } finally {
    agent.destroy();
    server.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    if (byFunction) rmSync(perfMap(server), { force: true });
  }
}

async function countInstructions(workloads: Workload[], requests: number, warmup: number): Promise<void> {
  try {
    execFileSync("valgrind", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("--instructions needs valgrind (Debian: apt-get install valgrind)");
  }
  const report = [];
  for (const workload of workloads) {
    const on = await instructionsPerRequest(workload, "on", requests, warmup);
    const off = await instructionsPerRequest(workload, "off", requests, warmup);
    const steady = { on: on.total - on.compiling, off: off.total - off.compiling };
    report.push({
      workload,
      requests,
      warmup,
      // Per-function costs are printed above, not repeated here.
      instructionsPerRequest: { on: { ...on, functions: undefined }, off: { ...off, functions: undefined } },
      costPercent: 100 * (on.total / off.total - 1),
      steadyCostPercent: 100 * (steady.on / steady.off - 1),
    });
    console.log(
      `${workload}: ${Math.round(on.total)} instructions/request on, ${Math.round(off.total)} off: metrics cost ${Math.round(on.total - off.total)} (${(100 * (on.total / off.total - 1)).toFixed(2)}%); ` +
        `without V8's optimizing compilers (${Math.round(on.compiling)} on, ${Math.round(off.compiling)} off) ${Math.round(steady.on)} / ${Math.round(steady.off)}: ` +
        `${Math.round(steady.on - steady.off)} (${(100 * (steady.on / steady.off - 1)).toFixed(2)}%)`,
    );
    // Cache and branch simulation: L1 instruction and data read misses, mispredicted conditional and indirect branches.
    for (const name of ["I1mr", "D1mr", "Bcm", "Bim"].filter((event) => event in on.events)) {
      const [a, b] = [on.events[name]!, off.events[name]!];
      console.log(`  ${name.padEnd(5)} ${a.toFixed(1)} on, ${b.toFixed(1)} off per request: ${(a - b).toFixed(1)} (${(100 * (a / b - 1)).toFixed(1)}%)`);
    }
    if (on.functions && off.functions) printByFunction(on.functions, off.functions, requests);
  }
  console.log(JSON.stringify({ node: process.version, report }, null, 2));
}

const serveArgument = args.get("serve");
if (serveArgument) {
  const [workload, served] = serveArgument.split(":") as [Workload, Served];
  // Exit cleanly on SIGTERM, so `--cpu-prof` can write its profile.
  process.once("SIGTERM", () => process.exit(0));
  await serve(workload, served);
} else if (args.has("instructions")) {
  const workloads = (args.get("workloads") ?? "scripted,scripted-stream").split(",") as Workload[];
  await countInstructions(workloads, Number(args.get("instructions") || 1000), Number(args.get("warmup") ?? 16_000));
} else {
  if (args.has("aa")) console.log("A/A run: both sides have metrics off; the differences below are noise.");
  // One process's CPU time cannot be split between two sides loaded at once.
  if (args.has("together") && args.has("one-process")) throw new Error("--together needs a process per side: drop --one-process");
  const rounds = Number(args.get("rounds") ?? 8);
  const seconds = Number(args.get("seconds") ?? 3);
  const connections = Number(args.get("connections") ?? 16);
  const workloads = (args.get("workloads") ?? "scripted,scripted-stream,tiny").split(",") as Workload[];
  const report = [];
  for (const workload of workloads) {
    const result = await measure(workload, rounds, seconds, workload === "tiny" ? Math.min(connections, 4) : connections, args.has("fresh"), args.has("together"));
    report.push(result);
    const fmt = (value: number) => value.toFixed(value >= 100 ? 0 : 2);
    console.log(
      `${workload}: on ${fmt(result.on.requestsPerSecond.median)} req/s (${fmt(result.on.requestsPerSecond.min)}-${fmt(result.on.requestsPerSecond.max)}), p99 ${fmt(result.on.p99Ms.median)} ms | ` +
        `off ${fmt(result.off.requestsPerSecond.median)} req/s (${fmt(result.off.requestsPerSecond.min)}-${fmt(result.off.requestsPerSecond.max)}), p99 ${fmt(result.off.p99Ms.median)} ms | ` +
        `cost ${result.throughputCostPercent.median.toFixed(1)}% throughput (paired rounds: median ${result.throughputCostPercent.pairedMedian.toFixed(1)}%, ${result.throughputCostPercent.pairedMin.toFixed(1)}..${result.throughputCostPercent.pairedMax.toFixed(1)}%), ${result.p99CostPercent.toFixed(1)}% p99, CPU/request ${fmt(result.on.cpuMicrosPerRequest)} vs ${fmt(result.off.cpuMicrosPerRequest)} us (${result.cpuCostPercent.toFixed(1)}%; paired rounds: median ${result.pairedCpuCostPercent.median.toFixed(1)}%, ${result.pairedCpuCostPercent.min.toFixed(1)}..${result.pairedCpuCostPercent.max.toFixed(1)}%)`,
    );
  }
  console.log(JSON.stringify({ node: process.version, report }, null, 2));
}
