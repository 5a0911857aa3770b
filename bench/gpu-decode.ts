/**
 * Decode tokens/s of node-llama-cpp on CPU and on a GPU backend, same models,
 * interleaved per model. Meant for a machine with a GPU; on one without, run
 * it with `--gpu false` for the CPU rows only.
 *
 *   tsx bench/gpu-decode.ts --gpu cuda [--models tiny,25m,/path/to/other.gguf] [--cpu-threads 1,16]
 *
 * Each configuration: one stream (decode tokens/s over tokens after the first,
 * and time to first token), then 4 streams at once (aggregate tokens/s).
 */
import { mkdirSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { getLlama, LlamaChat, type Llama, type LlamaModel } from "node-llama-cpp";
import { ensureTestModel } from "../packages/llama/src/gguf/test-model.js";

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index += 2) args.set(process.argv[index]!.replace(/^--/, ""), process.argv[index + 1] ?? "");
const gpu = (args.get("gpu") ?? "cuda") as "cuda" | "vulkan" | "false";
const modelArgs = (args.get("models") ?? "tiny,25m").split(",");
const cpuThreads = (args.get("cpu-threads") ?? `1,${availableParallelism()}`).split(",").map(Number);
const streamsPerRun = Number(args.get("requests") ?? 6);
const workDir = join(tmpdir(), "switchboard-gpu-bench");
mkdirSync(workDir, { recursive: true });

const prompts = ["Tell me a story about a lighthouse.", "Once upon a time", "Write a short poem about rain.", "Lily and Ben went to the park."];

async function modelPath(arg: string): Promise<string> {
  return arg === "tiny" || arg === "25m" ? ensureTestModel(arg, workDir) : arg;
}

async function run(model: LlamaModel, threads: number, concurrency: number) {
  const context = await model.createContext({ contextSize: 1024, sequences: concurrency, threads });
  const chats = Array.from({ length: concurrency }, () => new LlamaChat({ contextSequence: context.getSequence(), autoDisposeSequence: false }));
  let tokens = 0;
  let decodeTokens = 0;
  let decodeMs = 0;
  const ttfts: number[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    chats.map(async (chat) => {
      while (next < streamsPerRun * concurrency) {
        const prompt = prompts[next++ % prompts.length]!;
        const begin = performance.now();
        let first = 0;
        let last = 0;
        let count = 0;
        await chat.generateResponse([{ type: "user", text: prompt }, { type: "model", response: [] }], {
          maxTokens: 200,
          temperature: 0,
          onToken(chunk) {
            count += chunk.length;
            last = performance.now();
            if (first === 0) first = last;
          },
        });
        await chat.sequence.clearHistory();
        tokens += count;
        decodeTokens += count - 1;
        decodeMs += last - first;
        ttfts.push(first - begin);
      }
    }),
  );
  const wallMs = performance.now() - started;
  await context.dispose();
  ttfts.sort((a, b) => a - b);
  return { decodeRate: decodeTokens / (decodeMs / 1000), aggregate: tokens / (wallMs / 1000), ttftMs: ttfts[Math.floor(ttfts.length / 2)]!, tokens };
}

const rows: string[] = [];
const accelerated: Llama | undefined = gpu === "false" ? undefined : await getLlama({ gpu, build: "never" });
// Without the CPU-only prebuilt, the GPU build runs the CPU rows with no layers offloaded.
const cpu: Llama = await getLlama({ gpu: false, build: "never" }).catch((error: unknown) => {
  if (!accelerated) throw error;
  console.log("No CPU-only build here: CPU rows use the GPU build with gpuLayers 0.");
  return accelerated;
});
if (accelerated) console.log(`GPU backend: ${accelerated.gpu}; devices: ${(await accelerated.getGpuDeviceNames()).join(", ")}`);

for (const arg of modelArgs) {
  const path = await modelPath(arg);
  const configs: Array<{ label: string; llama: Llama; threads: number; gpuLayers?: "max" | 0 }> = [
    ...cpuThreads.map((threads) => ({ label: `cpu ${threads}t`, llama: cpu, threads, gpuLayers: 0 as const })),
    ...(accelerated ? [{ label: `${gpu}`, llama: accelerated, threads: 1, gpuLayers: "max" as const }] : []),
  ];
  for (const config of configs) {
    const model = await config.llama.loadModel({ modelPath: path, gpuLayers: config.gpuLayers });
    await run(model, config.threads, 1); // warm-up
    const one = await run(model, config.threads, 1);
    const four = await run(model, config.threads, 4);
    rows.push(
      `${basename(path).padEnd(34)} ${config.label.padEnd(9)} 1 stream ${one.decodeRate.toFixed(0).padStart(6)} tok/s  ttft ${one.ttftMs.toFixed(2).padStart(7)} ms   4 streams ${four.aggregate.toFixed(0).padStart(6)} tok/s aggregate (${(four.aggregate / one.aggregate).toFixed(2)}x of 1)`,
    );
    console.log(rows.at(-1));
    await model.dispose();
  }
}
console.log("\n" + rows.join("\n"));
process.exit(0);
