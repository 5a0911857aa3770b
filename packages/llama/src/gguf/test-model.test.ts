import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaChat, LlamaChatSession } from "node-llama-cpp";
import type { Llama, LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkGguf, inspectGguf } from "./gguf-check.js";
import { GENERATOR_VERSION, ensureTestModel, generateTestModel, testModelFileName } from "./test-model.js";

// The digests pin "same bytes on every run, on every machine". Change them
// only together with GENERATOR_VERSION.
const TINY_SHA256 = "c254250af4064f1b1de4452c03dd5edd29d49d87f325d578c65e2c8861cb8a31";
const MODEL_25M_SHA256 = "981877eb6ae705674d5af6a36a003a32186e5dff3ccc69647ccf7d7cf1ff62ff";

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

let directory: string;
let llama: Llama;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "switchboard-test-model-"));
  llama = await getLlama({ gpu: false, build: "never" });
});
afterAll(async () => {
  await llama?.dispose();
  await rm(directory, { recursive: true, force: true });
});

describe("generateTestModel", () => {
  it("writes the same tiny model, byte for byte, every time, in well under a second", async () => {
    const started = performance.now();
    const first = await generateTestModel("tiny", join(directory, "tiny-a.gguf"));
    const elapsed = performance.now() - started;
    const second = await generateTestModel("tiny", join(directory, "tiny-b.gguf"));
    expect(first.sha256).toBe(second.sha256);
    expect(first.sha256).toBe(TINY_SHA256);
    expect(elapsed).toBeLessThan(1000);
    expect(first.bytes).toBe((await stat(first.path)).size);
    expect(first.bytes).toBeGreaterThan(150_000);
    expect(first.bytes).toBeLessThan(350_000);
  });

  it("ensureTestModel writes the versioned file once and then reuses it", async () => {
    const cache = join(directory, "cache");
    const path = await ensureTestModel("tiny", cache);
    expect(path).toBe(join(cache, `switchboard-test-tiny-v${GENERATOR_VERSION}.gguf`));
    expect(testModelFileName("25m")).toBe(`switchboard-test-25m-v${GENERATOR_VERSION}.gguf`);
    const before = await stat(path);
    const [again, concurrent] = await Promise.all([ensureTestModel("tiny", cache), ensureTestModel("tiny", cache)]);
    expect([again, concurrent]).toEqual([path, path]);
    expect((await stat(path)).mtimeMs).toBe(before.mtimeMs);
    expect(await readdir(cache)).toEqual([testModelFileName("tiny")]); // no temporary files left
  });
});

describe("the tiny model in node-llama-cpp", () => {
  let path: string;
  let model: LlamaModel;
  let context: LlamaContext;
  let vocabularySize: number;
  beforeAll(async () => {
    path = await ensureTestModel("tiny", directory);
    vocabularySize = (await inspectGguf(path)).tokenizer!.tokenCount;
    model = await llama.loadModel({ modelPath: path });
    context = await model.createContext({ contextSize: 2048, threads: 1 });
  });
  afterAll(async () => {
    await context?.dispose();
    await model?.dispose();
  });

  it("is a llama model whose ChatML template selects node-llama-cpp's ChatML wrapper", async () => {
    const summary = await inspectGguf(path);
    expect(summary.architecture).toBe("llama");
    expect(summary.tokenizer?.chatTemplate).toContain("<|im_start|>");
    expect(model.detokenize([model.tokens.eos!], true)).toBe("<|im_end|>");
    const sequence = context.getSequence();
    try {
      const chat = new LlamaChat({ contextSequence: sequence });
      expect(chat.chatWrapper.wrapperName).toBe("ChatML");
    } finally {
      sequence.dispose();
    }
  });

  const prompts = ["Hello", "What is the capital of France?", "x", `Summarize this: ${"lorem ipsum dolor sit amet ".repeat(12)}`];
  for (const temperature of [0, 0.8]) {
    it(`replies in printable ASCII and ends with <|im_end|> on its own (temperature ${temperature})`, async () => {
      const sequence = context.getSequence();
      try {
        const chat = new LlamaChat({ contextSequence: sequence });
        for (const [index, prompt] of prompts.entries()) {
          const result = await chat.generateResponse([{ type: "user", text: prompt }], { temperature, seed: 11 + index, maxTokens: 200 });
          const tokens = model.tokenize(result.response).length;
          expect(result.metadata.stopReason, prompt).toBe("eogToken");
          expect(result.response).toMatch(PRINTABLE_ASCII);
          expect(tokens, result.response).toBeGreaterThanOrEqual(10);
          expect(tokens, result.response).toBeLessThanOrEqual(80);
          await sequence.clearHistory();
        }
      } finally {
        sequence.dispose();
      }
    });
  }

  it("ends replies on its own after a long system prompt, over several turns", async () => {
    const sequence = context.getSequence();
    try {
      // LlamaChatSession adds node-llama-cpp's default system prompt (~400 byte tokens).
      const session = new LlamaChatSession({ contextSequence: sequence });
      for (const prompt of ["Hi there", "And then?", "Tell me more"]) {
        const text = await session.prompt(prompt, { temperature: 0.8, maxTokens: 200 });
        expect(text).toMatch(PRINTABLE_ASCII);
        expect(model.tokenize(text).length).toBeGreaterThanOrEqual(10);
        expect(model.tokenize(text).length).toBeLessThan(200);
      }
    } finally {
      sequence.dispose();
    }
  });

  it("gives control, non-printable and invalid-UTF-8 byte tokens no probability at all", async () => {
    const sequence = context.getSequence();
    try {
      const prompt = model.tokenize("<s><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", true);
      const allowed = (token: Token): boolean => {
        if (token === model.tokens.eos) return true;
        const text = model.detokenize([token]);
        return text.length > 0 && PRINTABLE_ASCII.test(text);
      };
      let steps = 0;
      // topK 0 and no top-p/min-p cut: the full distribution comes back.
      for await (const output of sequence.evaluateWithMetadata(prompt, { probabilities: true }, { temperature: 1, topK: 0, topP: 1, minP: 0 })) {
        expect(output.probabilities.size).toBe(vocabularySize);
        let forbidden = 0;
        for (const [token, probability] of output.probabilities) if (!allowed(token)) forbidden += probability;
        expect(forbidden).toBeLessThan(1e-9);
        if (++steps >= 3) break;
      }
      expect(steps).toBeGreaterThan(0);
    } finally {
      sequence.dispose();
    }
  });

  it("serves embeddings of the model's width that differ between texts", async () => {
    const embeddings = await model.createEmbeddingContext({ contextSize: 512, threads: 1 });
    try {
      const first = (await embeddings.getEmbeddingFor("The cat sat on the mat.")).vector;
      const second = (await embeddings.getEmbeddingFor("Quarterly revenue grew by 4%.")).vector;
      expect(first).toHaveLength(64);
      expect(first.every(Number.isFinite)).toBe(true);
      expect(first.some((value) => value !== 0)).toBe(true);
      const cosine = first.reduce((sum, value, index) => sum + value * second[index]!, 0) / (Math.hypot(...first) * Math.hypot(...second));
      expect(cosine).toBeLessThan(0.99);
      expect((await embeddings.getEmbeddingFor("The cat sat on the mat.")).vector).toEqual(first);
    } finally {
      await embeddings.dispose();
    }
  });
});

describe("the 25m model", () => {
  it("has ~25M parameters, is deterministic, loads and decodes", async () => {
    const started = performance.now();
    const generated = await generateTestModel("25m", join(directory, "25m.gguf"));
    const generationMs = performance.now() - started;
    expect(generationMs).toBeLessThan(10_000);
    expect(generated.sha256).toBe(MODEL_25M_SHA256);
    expect(generated.parameters).toBeGreaterThan(24_000_000);
    expect(generated.parameters).toBeLessThan(27_000_000);
    await expect(checkGguf(generated.path)).resolves.toBeUndefined();
    expect((await inspectGguf(generated.path)).parameterCount).toBe(generated.parameters);

    const model = await llama.loadModel({ modelPath: generated.path });
    try {
      const context = await model.createContext({ contextSize: 1024, threads: 1 });
      const chat = new LlamaChat({ contextSequence: context.getSequence() });
      const result = await chat.generateResponse([{ type: "user", text: "Hello there" }], { temperature: 0.8, seed: 1, maxTokens: 200 });
      expect(result.metadata.stopReason).toBe("eogToken");
      expect(result.response).toMatch(PRINTABLE_ASCII);
      expect(model.tokenize(result.response).length).toBeGreaterThanOrEqual(10);
    } finally {
      await model.dispose();
    }
  });
});
