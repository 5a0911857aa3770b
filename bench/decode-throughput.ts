/**
 * Decode throughput through the gateway vs node-llama-cpp called directly, on
 * the same model and settings, interleaved in one run.
 *
 *   pnpm bench:decode [--rounds 3] [--requests 6] [--models tiny,25m]
 *
 * The gateway runs as a child process (`pnpm start` with a generated config),
 * streamed through the official openai client with include_usage; "direct"
 * runs LlamaChat in this process with the same context size, sequences and
 * threads. Both decode greedily from the same prompts, so both produce the
 * same tokens (checked: the token counts must agree). Decode tokens/s counts
 * the tokens after the first over the time from first to last token; time to
 * first token is from the request to the first text.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ensureTestModel } from "@switchboard/llama";
import { getLlama, LlamaChat, type ChatHistoryItem, type LlamaContext } from "node-llama-cpp";
import OpenAI from "openai";

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index += 2) args.set(process.argv[index]!.replace(/^--/, ""), process.argv[index + 1] ?? "");
const rounds = Number(args.get("rounds") ?? 3);
const requestsPerRun = Number(args.get("requests") ?? 6);
const specs = (args.get("models") ?? "tiny,25m").split(",") as Array<"tiny" | "25m">;
const contextSize = 2048;
const sequences = 4;
const threads = 1;
const maxTokens = 512;

const root = resolve(import.meta.dirname, "..");
const workDir = join(root, ".switchboard", "bench");
mkdirSync(workDir, { recursive: true });

const prompts = [
  "Tell me a story about a lighthouse.",
  "Write a short poem about rain.",
  "Explain how a bicycle works.",
  "Describe your favourite meal.",
  "What is the capital of France?",
  "List three colours of the sky.",
  "Say something kind.",
  "Summarise the plot of a fairy tale.",
];

interface Sample {
  ttftMs: number;
  tokens: number;
  decodeMs: number;
}

interface RunResult {
  samples: Sample[];
  wallMs: number;
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

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}

async function startGateway(modelPath: string): Promise<{ child: ChildProcess; baseURL: string }> {
  const port = await freePort();
  const configPath = join(workDir, `gateway-${port}.json`);
  writeFileSync(
    configPath,
    JSON.stringify({
      server: { host: "127.0.0.1", port, logLevel: "warn" },
      modelsDir: workDir,
      models: [{ id: "bench", backend: "llama", source: modelPath, contextSize, sequences, threads, maxTokens, defaultMaxTokens: maxTokens, maxWaiting: 64 }],
    }),
  );
  const child = spawn(process.execPath, ["--import", "tsx", join(root, "apps/embedded/src/main.ts")], {
    cwd: root,
    env: { ...process.env, SWITCHBOARD_CONFIG: configPath },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const baseURL = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 600; attempt++) {
    const ready = await fetch(`${baseURL}/ready`).then((response) => response.ok, () => false);
    if (ready) return { child, baseURL: `${baseURL}/v1` };
    await sleep(100);
  }
  child.kill();
  throw new Error("gateway did not become ready");
}

async function gatewayStream(client: OpenAI, prompt: string): Promise<Sample> {
  const started = performance.now();
  let first = 0;
  let last = 0;
  let tokens = 0;
  const stream = await client.chat.completions.create({
    model: "bench",
    messages: [{ role: "user", content: prompt }],
    temperature: 0,
    max_tokens: maxTokens,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) {
      last = performance.now();
      if (first === 0) first = last;
    }
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  return { ttftMs: first - started, tokens, decodeMs: last - first };
}

async function directStream(context: LlamaContext, sequenceIndex: number, prompt: string, chats: LlamaChat[]): Promise<Sample> {
  const chat = chats[sequenceIndex]!;
  const history: ChatHistoryItem[] = [
    { type: "user", text: prompt },
    { type: "model", response: [] },
  ];
  const started = performance.now();
  let first = 0;
  let last = 0;
  const meterBefore = chat.sequence.tokenMeter.getState();
  await chat.generateResponse(history, {
    maxTokens,
    temperature: 0,
    onTextChunk(text) {
      if (!text) return;
      last = performance.now();
      if (first === 0) first = last;
    },
  });
  const tokens = chat.sequence.tokenMeter.diff(meterBefore).usedOutputTokens;
  // Leave the sequence empty for the next prompt, as the engine does between jobs.
  await chat.sequence.clearHistory();
  void context;
  return { ttftMs: first - started, tokens, decodeMs: last - first };
}

async function measure(concurrency: number, one: (slot: number, prompt: string) => Promise<Sample>): Promise<RunResult> {
  const samples: Sample[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, slot) => {
      while (next < requestsPerRun * concurrency) {
        const prompt = prompts[next++ % prompts.length]!;
        samples.push(await one(slot, prompt));
      }
    }),
  );
  return { samples, wallMs: performance.now() - started };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const decodeRate = (run: RunResult) =>
  run.samples.reduce((sum, sample) => sum + sample.tokens - 1, 0) / (run.samples.reduce((sum, sample) => sum + sample.decodeMs, 0) / 1000);
const aggregateRate = (run: RunResult) => run.samples.reduce((sum, sample) => sum + sample.tokens, 0) / (run.wallMs / 1000);
const spread = (values: number[]) => `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`;

const llama = await getLlama({ gpu: false, build: "never" });
const report: Record<string, unknown> = {};

for (const spec of specs) {
  const modelPath = await ensureTestModel(spec, workDir);
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize, sequences, threads });
  const chats = Array.from({ length: sequences }, () => new LlamaChat({ contextSequence: context.getSequence(), autoDisposeSequence: false }));
  const { child, baseURL } = await startGateway(modelPath);
  const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
  // Warm both sides so first-load costs stay out of the figures.
  await measure(1, (slot, prompt) => directStream(context, slot, prompt, chats));
  await measure(1, (_slot, prompt) => gatewayStream(client, prompt));
  const idleRss = rssBytes(child.pid!);

  const rows: Record<string, { single: number[]; ttft: number[]; aggregate1: number[]; aggregate4: number[]; tokens: number[] }> = {
    direct: { single: [], ttft: [], aggregate1: [], aggregate4: [], tokens: [] },
    gateway: { single: [], ttft: [], aggregate1: [], aggregate4: [], tokens: [] },
  };
  let peakRss = idleRss;
  for (let round = 0; round < rounds; round++) {
    // Alternate which side goes first, so drift on a shared machine favours neither.
    const order = round % 2 === 0 ? (["direct", "gateway"] as const) : (["gateway", "direct"] as const);
    for (const concurrency of [1, 4]) {
      for (const side of order) {
        let sampler: NodeJS.Timeout | undefined;
        if (side === "gateway") sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(child.pid!))), 20);
        const run =
          side === "direct"
            ? await measure(concurrency, (slot, prompt) => directStream(context, slot, prompt, chats))
            : await measure(concurrency, (_slot, prompt) => gatewayStream(client, prompt));
        clearInterval(sampler);
        const row = rows[side]!;
        if (concurrency === 1) {
          row.single.push(decodeRate(run));
          row.ttft.push(median(run.samples.map((sample) => sample.ttftMs)));
          row.tokens.push(run.samples.reduce((sum, sample) => sum + sample.tokens, 0));
          row.aggregate1.push(aggregateRate(run));
        } else {
          row.aggregate4.push(aggregateRate(run));
        }
      }
    }
  }
  child.kill("SIGTERM");
  await context.dispose();
  await model.dispose();

  const direct = rows.direct!;
  const gateway = rows.gateway!;
  const singleRatio = median(gateway.single) / median(direct.single);
  console.log(`\n== ${spec} model (${threads} thread, ${sequences} sequences, context ${contextSize}, ${rounds} rounds × ${requestsPerRun} requests)`);
  console.log(`tokens generated per single-stream run: direct ${direct.tokens.join("/")}, gateway ${gateway.tokens.join("/")}`);
  console.log(`single stream decode tok/s   direct ${median(direct.single).toFixed(0)} (${spread(direct.single)})   gateway ${median(gateway.single).toFixed(0)} (${spread(gateway.single)})   gateway/direct ${singleRatio.toFixed(3)}`);
  console.log(`1 stream aggregate tok/s     direct ${median(direct.aggregate1).toFixed(0)} (${spread(direct.aggregate1)})   gateway ${median(gateway.aggregate1).toFixed(0)} (${spread(gateway.aggregate1)})`);
  console.log(`4 streams aggregate tok/s    direct ${median(direct.aggregate4).toFixed(0)} (${spread(direct.aggregate4)})   gateway ${median(gateway.aggregate4).toFixed(0)} (${spread(gateway.aggregate4)})   4 vs 1: direct ${(median(direct.aggregate4) / median(direct.aggregate1)).toFixed(2)}x, gateway ${(median(gateway.aggregate4) / median(gateway.aggregate1)).toFixed(2)}x`);
  console.log(`time to first token ms (p50) direct ${median(direct.ttft).toFixed(2)}   gateway ${median(gateway.ttft).toFixed(2)}   added ${(median(gateway.ttft) - median(direct.ttft)).toFixed(2)}`);
  console.log(`gateway RSS MiB              idle ${(idleRss / 2 ** 20).toFixed(0)}   peak under load ${(peakRss / 2 ** 20).toFixed(0)}`);
  report[spec] = { rows, singleRatio, idleRss, peakRss };
}

writeFileSync(join(workDir, "decode-throughput.json"), JSON.stringify(report, null, 2));
process.exit(0);
