/**
 * Why `threads` defaults to 1: direct node-llama-cpp decode tokens/s on the
 * generated 25M model with 1, 2, ... threads, interleaved in one run.
 *
 *   pnpm bench:threads [--threads 1,2,4] [--rounds 3] [--model 25m]
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensureTestModel } from "@switchboard/llama";
import { getLlama, LlamaChat } from "node-llama-cpp";

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index += 2) args.set(process.argv[index]!.replace(/^--/, ""), process.argv[index + 1] ?? "");
const threadCounts = (args.get("threads") ?? "1,2").split(",").map(Number);
const rounds = Number(args.get("rounds") ?? 3);
const spec = (args.get("model") ?? "25m") as "tiny" | "25m";

const workDir = join(resolve(import.meta.dirname, ".."), ".switchboard", "bench");
mkdirSync(workDir, { recursive: true });
const llama = await getLlama({ gpu: false, build: "never" });
const model = await llama.loadModel({ modelPath: await ensureTestModel(spec, workDir) });

const rates = new Map<number, number[]>(threadCounts.map((threads) => [threads, []]));
for (let round = 0; round < rounds; round++) {
  for (const threads of round % 2 === 0 ? threadCounts : [...threadCounts].reverse()) {
    const context = await model.createContext({ contextSize: 1024, sequences: 1, threads });
    const chat = new LlamaChat({ contextSequence: context.getSequence() });
    let first = 0;
    let last = 0;
    let tokens = 0;
    const deadline = performance.now() + 20_000;
    const controller = new AbortController();
    await chat.generateResponse([{ type: "user", text: "Tell me a story." }, { type: "model", response: [] }], {
      maxTokens: 64,
      temperature: 0,
      signal: controller.signal,
      stopOnAbortSignal: true,
      onToken() {
        tokens++;
        last = performance.now();
        if (first === 0) first = last;
        // A slow setting must not hold the run hostage.
        if (last > deadline) controller.abort();
      },
    });
    rates.get(threads)!.push((tokens - 1) / ((last - first) / 1000));
    await context.dispose();
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const base = median(rates.get(threadCounts[0]!)!);
console.log(`${spec} model, single sequence, decode tokens/s (median of ${rounds}, interleaved)`);
for (const [threads, values] of rates) {
  console.log(`threads ${threads}: ${median(values).toFixed(1)} tok/s (${values.map((value) => value.toFixed(1)).join(", ")})  vs threads ${threadCounts[0]}: ${(median(values) / base).toFixed(3)}x`);
}
process.exit(0);
