import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufCheckError, checkGguf, inspectGguf } from "./gguf-check.js";
import { probeGgufInChildProcess } from "./gguf-probe.js";
import { gguf, writeGgufFile } from "./gguf-writer.js";
import type { GgufTensorInput, GgufWriterValue } from "./gguf-writer.js";
import { generateTestModel, testModelContent } from "./test-model.js";

const REPO_ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../../..");
const STORIES = resolve(REPO_ROOT, "../shared/models/stories260K.gguf");

let directory: string;
let tinyPath: string;
const tiny = testModelContent("tiny");

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "switchboard-gguf-check-"));
  tinyPath = (await generateTestModel("tiny", join(directory, "tiny.gguf"))).path;
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

interface Variant {
  readonly drop?: readonly string[];
  readonly replace?: Readonly<Record<string, GgufWriterValue>>;
  readonly tensors?: (tensors: readonly GgufTensorInput[]) => GgufTensorInput[];
}

/** The tiny model with some metadata or tensors changed, written with our writer. */
async function tinyVariant(name: string, variant: Variant): Promise<string> {
  const path = join(directory, `${name}.gguf`);
  const metadata = tiny.metadata
    .filter(([key]) => !variant.drop?.includes(key))
    .map(([key, value]) => [key, variant.replace?.[key] ?? value] as const);
  await writeGgufFile(path, { metadata, tensors: variant.tensors?.(tiny.tensors) ?? [...tiny.tensors] });
  return path;
}

async function refusal(path: string): Promise<GgufCheckError> {
  const error = await checkGguf(path).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(GgufCheckError);
  return error as GgufCheckError;
}

function tokensOf(content: typeof tiny): string[] {
  const value = content.metadata.find(([key]) => key === "tokenizer.ggml.tokens")?.[1];
  if (value?.type !== "array") throw new Error("the tiny model has no token list");
  return value.values as string[];
}

describe("checkGguf accepts", () => {
  it("the generated tiny model, without warnings (the 25m model is checked in test-model.test.ts)", async () => {
    await expect(checkGguf(tinyPath)).resolves.toBeUndefined();
    const summary = await inspectGguf(tinyPath);
    expect(summary.problems).toEqual([]);
    expect(summary.warnings).toEqual([]);
    expect(summary).toMatchObject({ architecture: "llama", version: 3, alignment: 32, tokenizer: { model: "llama", eosTokenId: 260 } });
  });

  it.skipIf(!existsSync(STORIES))("the real stories260K model from ../shared/models", async () => {
    await expect(checkGguf(STORIES)).resolves.toBeUndefined();
    const summary = await inspectGguf(STORIES);
    expect(summary).toMatchObject({ architecture: "llama", embeddingLength: 64, blockCount: 5, tokenizer: { tokenCount: 512 } });
  });

  it("a valid file of another architecture, with a warning that only generic checks ran", async () => {
    const path = join(directory, "qwen2.gguf");
    await writeGgufFile(path, {
      metadata: [
        ["general.architecture", gguf.string("qwen2")],
        ["qwen2.context_length", gguf.u32(512)],
        ["qwen2.embedding_length", gguf.u32(8)],
        ["qwen2.block_count", gguf.u32(1)],
        ["tokenizer.ggml.model", gguf.string("gpt2")],
        ["tokenizer.ggml.tokens", gguf.strings(["a", "b", "ab"])],
        ["tokenizer.ggml.token_type", gguf.i32s([1, 1, 1])],
        ["tokenizer.ggml.merges", gguf.strings(["a b"])],
      ],
      tensors: [{ name: "token_embd.weight", shape: [8, 3], type: "f32", data: new Float32Array(24) }],
    });
    await expect(checkGguf(path)).resolves.toBeUndefined();
    expect((await inspectGguf(path)).warnings.join("\n")).toMatch(/"qwen2" gets only the generic checks/);

    // ...but the generic checks still apply to it.
    await truncate(path, (await stat(path)).size - 64);
    expect((await refusal(path)).message).toMatch(/qwen2\.gguf.*truncated/);
  });

  it("one part of a split model, whose other tensors live in the other parts", async () => {
    const path = join(directory, "split-00001-of-00002.gguf");
    const metadata = [...tiny.metadata, ["split.no", gguf.u16(0)] as const, ["split.count", gguf.u16(2)] as const];
    await writeGgufFile(path, { metadata, tensors: tiny.tensors.filter((tensor) => !tensor.name.startsWith("blk.1.")) });
    await expect(checkGguf(path)).resolves.toBeUndefined();
    expect((await inspectGguf(path)).warnings.join("\n")).toMatch(/2-file split model/);
  });
});

describe("checkGguf refuses, naming the file and the problem", () => {
  it("a llama file without llama.feed_forward_length", async () => {
    const error = await refusal(await tinyVariant("no-feed-forward", { drop: ["llama.feed_forward_length"] }));
    expect(error.message).toContain('"no-feed-forward.gguf"');
    expect(error.problems).toEqual(["missing required metadata llama.feed_forward_length"]);
  });

  it("a llama file without llama.attention.head_count", async () => {
    const error = await refusal(await tinyVariant("no-heads", { drop: ["llama.attention.head_count"] }));
    expect(error.message).toContain('"no-heads.gguf"');
    expect(error.message).toContain("missing required metadata llama.attention.head_count");
  });

  it("every problem at once", async () => {
    const error = await refusal(
      await tinyVariant("several", { drop: ["llama.feed_forward_length", "llama.attention.layer_norm_rms_epsilon", "llama.context_length"] }),
    );
    expect(error.problems).toHaveLength(3);
    for (const key of ["llama.feed_forward_length", "llama.attention.layer_norm_rms_epsilon", "llama.context_length"]) expect(error.message).toContain(key);
  });

  it("a SentencePiece vocabulary that lacks byte tokens", async () => {
    const tokens = tokensOf(tiny).map((token) => (/^<0x[89A-F][0-9A-F]>$/.test(token) ? `${token}x` : token));
    const error = await refusal(await tinyVariant("no-high-bytes", { replace: { "tokenizer.ggml.tokens": gguf.strings(tokens) } }));
    expect(error.message).toContain('"no-high-bytes.gguf"');
    expect(error.message).toMatch(/lacks 128 of the 256 byte tokens.*<0x80>/);
  });

  it("token types or scores that do not match the token list", async () => {
    const error = await refusal(await tinyVariant("short-types", { replace: { "tokenizer.ggml.token_type": gguf.i32s([1, 1, 1]) } }));
    expect(error.message).toMatch(/tokenizer\.ggml\.token_type has 3 entries but there are 270 tokens/);
  });

  it("a truncated file", async () => {
    const path = join(directory, "truncated.gguf");
    await copyFile(tinyPath, path);
    await truncate(path, 150_000);
    const error = await refusal(path);
    expect(error.message).toMatch(/"truncated\.gguf".*file is truncated: it has 150000 bytes/);
  });

  it("a file cut inside its header", async () => {
    const path = join(directory, "cut-header.gguf");
    await copyFile(tinyPath, path);
    await truncate(path, 2000);
    expect((await refusal(path)).message).toMatch(/"cut-header\.gguf".*file is truncated: .*metadata/);
  });

  it("random bytes", async () => {
    const path = join(directory, "random.gguf");
    await writeFile(path, randomBytes(64 * 1024));
    expect((await refusal(path)).message).toMatch(/"random\.gguf".*not a GGUF file/);
  });

  it("an unsupported GGUF version", async () => {
    const path = join(directory, "version-1.gguf");
    const bytes = await readFile(tinyPath);
    bytes.writeUInt32LE(1, 4);
    await writeFile(path, bytes);
    expect((await refusal(path)).message).toMatch(/unsupported GGUF version 1/);
  });

  it("a tensor whose shape does not match the metadata", async () => {
    const path = await tinyVariant("bad-shape", {
      tensors: (tensors) => tensors.map((tensor) => (tensor.name === "blk.1.ffn_up.weight" ? { ...tensor, shape: [64, 96], data: new Float32Array(64 * 96) } : tensor)),
    });
    const error = await refusal(path);
    expect(error.message).toContain('"bad-shape.gguf"');
    expect(error.problems).toEqual(["tensor 'blk.1.ffn_up.weight' has shape [64, 96], but the metadata needs [64, 128]"]);
  });

  it("a head_count_kv that does not match the key and value tensors", async () => {
    const error = await refusal(await tinyVariant("kv-heads", { replace: { "llama.attention.head_count_kv": gguf.u32(1) } }));
    expect(error.message).toContain("tensor 'blk.0.attn_k.weight' has shape [64, 32], but the metadata needs [64, 16]");
    expect(error.problems.length).toBe(4); // attn_k and attn_v in both blocks
  });

  it("a missing tensor", async () => {
    const error = await refusal(await tinyVariant("no-norm", { tensors: (tensors) => tensors.filter((tensor) => tensor.name !== "output_norm.weight") }));
    expect(error.problems).toEqual(["missing tensor 'output_norm.weight'"]);
  });

  it("a file that is not there", async () => {
    expect((await refusal(join(directory, "absent.gguf"))).message).toMatch(/"absent\.gguf".*cannot read the file \(ENOENT\)/);
  });
});

describe("inspectGguf", () => {
  it("summarizes the file", async () => {
    const summary = await inspectGguf(tinyPath);
    expect(summary).toMatchObject({
      name: "switchboard-test-tiny",
      contextLength: 4096,
      embeddingLength: 64,
      blockCount: 2,
      parameterCount: tiny.parameters,
      tokenizer: { model: "llama", tokenCount: 270, bosTokenId: 1, eosTokenId: 260 },
    });
    expect(summary.tensors).toHaveLength(21);
    expect(summary.metadata.get("llama.attention.head_count")).toEqual({ type: "uint32", value: 4 });
  });

  it("stops at its header budget instead of reading on", async () => {
    await expect(inspectGguf(tinyPath, { maxHeaderBytes: 1000 })).rejects.toThrow(/header is larger than the 1000-byte limit/);
  });
});

describe("probeGgufInChildProcess", () => {
  it("reports a file that aborts llama.cpp as a failure, without taking the caller down", async () => {
    const path = await tinyVariant("probe-no-heads", { drop: ["llama.attention.head_count"] });
    const result = await probeGgufInChildProcess(path, { timeoutMs: 20_000 });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.timedOut).toBe(false);
    // llama.cpp aborts (SIGABRT) on this file today; a newer one may refuse it with an error instead.
    expect(result.signal !== null || (result.exitCode ?? 0) !== 0).toBe(true);
    expect(result.reason.length).toBeGreaterThan(0);
  });

  it("reports a good file as loadable", async () => {
    const result = await probeGgufInChildProcess(tinyPath, { timeoutMs: 20_000 });
    expect(result).toMatchObject({ ok: true });
  });
});
