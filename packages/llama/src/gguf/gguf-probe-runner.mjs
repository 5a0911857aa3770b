// Loads one GGUF file with node-llama-cpp and decodes a token, in a process of
// its own: a file that aborts llama.cpp takes only this process down. Plain
// JavaScript so that `node` runs it without a TypeScript loader.
// Usage: node gguf-probe-runner.mjs <model path>
// Prints one JSON line on stdout: {"ok":true,...} or {"ok":false,"message":...}.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const modelPath = process.argv[2];
const report = (result) => process.stdout.write(`${JSON.stringify(result)}\n`);

if (modelPath === undefined) {
  report({ ok: false, message: "no model path given" });
  process.exit(2);
}

try {
  const llama = await getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.warn,
    // Synchronous writes: if llama.cpp aborts right after logging, the line is already out.
    logger: (level, message) => process.stderr.write(`[${level}] ${message.endsWith("\n") ? message : `${message}\n`}`),
  });
  const model = await llama.loadModel({ modelPath, useMmap: true });
  const context = await model.createContext({ contextSize: Math.min(256, model.trainContextSize), threads: 1 });
  const sequence = context.getSequence();
  const text = model.tokenize("Hello, world! \u00e9\u00df\u4e2d\n");
  const tokens = model.tokens.bos !== null && model.tokens.shouldPrependBosToken ? [model.tokens.bos, ...text] : text;
  let generated = 0;
  for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
    void token;
    generated += 1;
    if (generated >= 2) break;
  }
  const detokenized = model.detokenize(text);
  report({ ok: true, promptTokens: tokens.length, generatedTokens: generated, roundTrip: detokenized.length > 0 });
  await llama.dispose();
  process.exit(0);
} catch (error) {
  report({ ok: false, message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}
