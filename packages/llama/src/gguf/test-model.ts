import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { GeneratedModelSpec } from "@switchboard/catalog";
import { GgufTokenType, byteTokenText } from "./gguf-format.js";
import { gguf, writeGgufFile } from "./gguf-writer.js";
import type { GgufFileContent, GgufTensorInput, GgufWriterValue } from "./gguf-writer.js";

/**
 * The project's own random-weight llama models, made on the machine instead
 * of downloaded. The weights are random, but a few hand-set channels shape
 * what they say: only printable ASCII comes out, and every reply ends on its
 * own with `<|im_end|>` a few tens of tokens after the turn's
 * `<|im_start|>`. See {@link generateTestModel} for how.
 *
 * Bump when the bytes a spec produces change, so cached files are not reused.
 */
export const GENERATOR_VERSION = 1;

/** Which generated model. */
export type TestModelSpec = GeneratedModelSpec;

/** What {@link generateTestModel} wrote. */
export interface GeneratedTestModel {
  readonly path: string;
  /** Number of weights (all tensor elements). */
  readonly parameters: number;
  /** File size. */
  readonly bytes: number;
  /** Hex digest of the file; the same on every run for a given spec and {@link GENERATOR_VERSION}. */
  readonly sha256: string;
}

interface ModelShape {
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly headCount: number;
  readonly headCountKv: number;
  readonly feedForwardLength: number;
  readonly contextLength: number;
  readonly seed: number;
}

const SHAPES: Record<TestModelSpec, ModelShape> = {
  // ~240 KB: 2 layers, grouped-query attention so that path is exercised too.
  tiny: { embeddingLength: 64, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 128, contextLength: 4096, seed: 0x7e57_0001 },
  // ~25.6M parameters, ~51 MB with f16 matrices.
  "25m": { embeddingLength: 512, blockCount: 8, headCount: 8, headCountKv: 8, feedForwardLength: 1376, contextLength: 4096, seed: 0x7e57_0025 },
};

/** The file name {@link ensureTestModel} uses for a spec. */
export function testModelFileName(spec: TestModelSpec): string {
  return `switchboard-test-${spec}-v${GENERATOR_VERSION}.gguf`;
}

// ---------------------------------------------------------------- vocabulary

const UNK = 0;
const BOS = 1;
const EOS_CLASSIC = 2;
const FIRST_BYTE = 3;
const IM_START = FIRST_BYTE + 256;
const IM_END = IM_START + 1;
const SPACE_PIECE = "\u2581";
/** A few SentencePiece merges, so prompts exercise the merge path and replies can use them. */
const MERGES = [`${SPACE_PIECE}t`, "he", `${SPACE_PIECE}the`, "in", "er", "an", "on", `${SPACE_PIECE}a`];

interface Vocabulary {
  readonly tokens: string[];
  readonly types: number[];
  readonly scores: number[];
  /** Tokens a reply may contain: printable ASCII bytes, the space piece and the merges. */
  readonly allowed: boolean[];
  /** Tokens whose position the end-of-turn counter measures from. */
  readonly markers: boolean[];
  /** Per-token prior logit for allowed tokens, from English letter frequencies. */
  readonly prior: number[];
}

// Percent frequency in English text; anything printable not listed is rare.
const LETTER_FREQUENCY: Record<string, number> = {
  e: 12.7, t: 9.1, a: 8.2, o: 7.5, i: 7.0, n: 6.7, s: 6.3, h: 6.1, r: 6.0, d: 4.3, l: 4.0, c: 2.8, u: 2.8,
  m: 2.4, w: 2.4, f: 2.2, g: 2.0, y: 2.0, p: 1.9, b: 1.5, v: 1.0, k: 0.8, j: 0.15, x: 0.15, q: 0.1, z: 0.07,
  " ": 9, ".": 0.6, ",": 0.6, "'": 0.2, "!": 0.1, "?": 0.1, "-": 0.1,
};

function buildVocabulary(): Vocabulary {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [GgufTokenType.UNKNOWN, GgufTokenType.CONTROL, GgufTokenType.CONTROL];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(byteTokenText(byte));
    types.push(GgufTokenType.BYTE);
  }
  tokens.push("<|im_start|>", "<|im_end|>", SPACE_PIECE, ...MERGES);
  types.push(GgufTokenType.CONTROL, GgufTokenType.CONTROL, GgufTokenType.NORMAL, ...MERGES.map(() => GgufTokenType.NORMAL));
  // SentencePiece merges the highest-scoring pair first; bytes and specials never merge.
  const scores = tokens.map((_, id) => (id > IM_END ? -(id - IM_END) : 0));
  const allowed = tokens.map((_, id) => (id >= FIRST_BYTE + 0x20 && id <= FIRST_BYTE + 0x7e) || id > IM_END);
  const markers = tokens.map((_, id) => id === BOS || id === IM_START);
  const prior = tokens.map((text, id) => {
    if (!allowed[id]) return 0;
    const character = id < IM_START ? String.fromCharCode(id - FIRST_BYTE) : text.replaceAll(SPACE_PIECE, " ");
    const frequency = character.length > 1 ? 1.5 : (LETTER_FREQUENCY[character] ?? (/[A-Z]/.test(character) ? 0.3 : /[0-9]/.test(character) ? 0.2 : 0.02));
    return Math.log(frequency / 4);
  });
  return { tokens, types, scores, allowed, markers, prior };
}

// ---------------------------------------------------------------- randomness

/** FNV-1a, to derive an independent stream per tensor from its name. */
function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < name.length; index++) {
    hash ^= name.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** sfc32: small, fast, and the same on every platform. Returns uniform values in [-1, 1). */
function uniformSource(seed: number, name: string): () => number {
  let a = seed >>> 0;
  let b = hashName(name);
  let c = 0x9e3779b9;
  let d = 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 2147483648 - 1;
  };
  for (let warmUp = 0; warmUp < 12; warmUp++) next();
  return next;
}

/** Uniform values in [-1, 1) have standard deviation 1/sqrt(3). */
const UNIFORM_TO_UNIT = Math.sqrt(3);

// ---------------------------------------------------------------- the model

// Residual-stream channels with a fixed meaning; the rest carry random "content".
const BIAS = 0; // 1 in every token: a constant the heads and the output read
const MARK = 1; // 0.5 in turn markers (<s>, <|im_start|>), 0 elsewhere
const CTX = 2; // written by layer 0, head 0: how close the last marker is
const CONTENT = 3;
const CONTENT_NORM = 0.5;
const MARK_VALUE = 0.5;
/** output_norm weight of the fixed channels: keeps them small in embeddings; the output matrix scales them back up. */
const FIXED_CHANNEL_NORM = 1 / 16;

// The end-of-turn counter (layer 0, head 0). Its query is constant; its key
// is non-zero only at markers. On two rotary pairs (theta 0.01 and 0.001 per
// position with freq_base 1e8) a marker at distance d scores
// COUNTER_AMPLITUDE * (cos(0.01 d) + cos(0.001 d)); on a third, slow pair
// (theta ~1e-7, effectively constant) it gets a fixed offset. Plain tokens
// score 0. So the attention weight w on the turn's marker is about
//   sigmoid(COUNTER_GATE - COUNTER_AMPLITUDE * (2 - cos(0.01 d) - cos(0.001 d)) - ln(tokens in context))
// which stays near 1 for the first ~40 tokens after the marker, then falls to
// 0 within ~10 tokens. (The second pair keeps an earlier marker 628 tokens
// back, where cos(0.01 d) comes round again, from reviving the counter.)
// The value is 1 at markers, so w lands in CTX, and the output layer turns
// CTX into a large penalty on <|im_end|>: while w is high the reply cannot
// end; once it falls the end token wins. More tokens in context end a reply
// a little sooner: ~47 tokens after a short prompt, ~37 after 500 tokens.
const ROPE_FREQ_BASE = 1e8;
const COUNTER_AMPLITUDE = 60;
const COUNTER_THETAS = [0.01, 0.001];
/** Distance from the turn's <|im_start|> at which w is 1/2 with 100 tokens in context. */
const COUNTER_DISTANCE = 52;
const COUNTER_GATE =
  Math.log(100) + COUNTER_THETAS.reduce((sum, theta) => sum + COUNTER_AMPLITUDE * (1 - Math.cos(theta * COUNTER_DISTANCE)), 0);

// Output layer, in logit units before dividing by the residual's norm (~1.3-2).
const END_LOGIT = 30; // <|im_end|> once the counter has run out
const END_PENALTY = 62; // subtracted while the counter is running (times w)
const END_JITTER = 2; // content-driven spread of the end logit, so lengths vary
const FORBIDDEN_LOGIT = -60; // control, non-printable and invalid-UTF-8 byte tokens
const CONTENT_LOGIT_STD = 2.2;

/** Random-weight scales: the standard deviation of each block's output, per component. */
const QK_STD = 1.5;
/** Std of one content channel after rmsnorm: the content is ~0.5-1 of a residual whose fixed part is ~1. */
const RESIDUAL_CONTENT_STD = 0.5;
// Norm all layers' attention (feed-forward) outputs add to the residual
// together, split over the layers so every spec ends with a similar mix of
// fixed channels and content (which sets the logit scales below).
const ATTENTION_STEP = 0.85;
const FEED_FORWARD_STEP = 0.42;

interface Tensors {
  readonly list: GgufTensorInput[];
  readonly parameters: number;
}

function buildTensors(shape: ModelShape, vocabulary: Vocabulary): Tensors {
  const E = shape.embeddingLength;
  const F = shape.feedForwardLength;
  const V = vocabulary.tokens.length;
  const headDim = E / shape.headCount;
  const kvDim = headDim * shape.headCountKv;
  const list: GgufTensorInput[] = [];

  const add = (name: string, dims: number[], type: "f32" | "f16", fill: (data: Float32Array, random: () => number) => void): void => {
    const elements = dims.reduce((product, size) => product * size, 1);
    list.push({
      name,
      shape: dims,
      type,
      data: () => {
        const data = new Float32Array(elements);
        fill(data, uniformSource(shape.seed, name));
        return data;
      },
    });
  };
  /**
   * Fills rows [fromRow, toRow) of an [inputs, outputs] matrix with random
   * weights that read inputs [fromInput, inputs) of std `inputStd` and give
   * outputs of std `outputStd`. Matrices that read the residual stream skip
   * its fixed channels: the constant would otherwise swamp the content and
   * every token would look alike.
   */
  const randomRows = (data: Float32Array, random: () => number, layout: { inputs: number; fromInput: number; fromRow: number; toRow: number; outputStd: number; inputStd: number }): void => {
    const { inputs, fromInput, fromRow, toRow, outputStd, inputStd } = layout;
    const scale = (UNIFORM_TO_UNIT * outputStd) / (inputStd * Math.sqrt(inputs - fromInput));
    for (let row = fromRow; row < toRow; row++) {
      for (let index = row * inputs + fromInput; index < (row + 1) * inputs; index++) data[index] = random() * scale;
    }
  };
  /** Reads the residual stream's content channels (normalized, each of std about RESIDUAL_CONTENT_STD). */
  const fromResidual = (fromRow: number, toRow: number, outputStd: number) => ({ inputs: E, fromInput: CONTENT, fromRow, toRow, outputStd, inputStd: RESIDUAL_CONTENT_STD });
  const ones = (data: Float32Array): void => {
    data.fill(1);
  };

  // Every token's embedding has the same norm, so layer 0 normalizes all of them alike.
  const embeddingNorm = Math.sqrt(1 + CONTENT_NORM * CONTENT_NORM);
  const normalizedBias = Math.sqrt(E) / embeddingNorm;
  const normalizedMark = (MARK_VALUE * Math.sqrt(E)) / embeddingNorm;

  add("token_embd.weight", [E, V], "f16", (data, random) => {
    const row = new Float32Array(E - CONTENT);
    for (let token = 0; token < V; token++) {
      const base = token * E;
      data[base + BIAS] = 1;
      if (vocabulary.markers[token]) {
        data[base + MARK] = MARK_VALUE;
        continue;
      }
      let norm = 0;
      for (let index = 0; index < row.length; index++) {
        row[index] = random();
        norm += row[index]! * row[index]!;
      }
      const scale = CONTENT_NORM / Math.sqrt(norm);
      for (let index = 0; index < row.length; index++) data[base + CONTENT + index] = row[index]! * scale;
    }
  });

  for (let layer = 0; layer < shape.blockCount; layer++) {
    const prefix = `blk.${layer}.`;
    const counterLayer = layer === 0;
    add(`${prefix}attn_norm.weight`, [E], "f32", ones);
    add(`${prefix}attn_q.weight`, [E, E], "f16", (data, random) => {
      randomRows(data, random, fromResidual(counterLayer ? headDim : 0, E, QK_STD));
      if (!counterLayer) return;
      const query = Math.sqrt(COUNTER_AMPLITUDE * Math.sqrt(headDim));
      for (const theta of COUNTER_THETAS) data[rotaryPairRow(headDim, theta) * E + BIAS] = query / normalizedBias;
      data[slowPairRow(headDim) * E + BIAS] = query / normalizedBias;
    });
    add(`${prefix}attn_k.weight`, [E, kvDim], "f16", (data, random) => {
      randomRows(data, random, fromResidual(counterLayer ? headDim : 0, kvDim, QK_STD));
      if (!counterLayer) return;
      const query = Math.sqrt(COUNTER_AMPLITUDE * Math.sqrt(headDim));
      for (const theta of COUNTER_THETAS) data[rotaryPairRow(headDim, theta) * E + MARK] = query / normalizedMark;
      // score = query * key / sqrt(headDim) = COUNTER_GATE - (the rotary pairs' peak)
      const offset = COUNTER_GATE - COUNTER_AMPLITUDE * COUNTER_THETAS.length;
      data[slowPairRow(headDim) * E + MARK] = (offset * Math.sqrt(headDim)) / query / normalizedMark;
    });
    add(`${prefix}attn_v.weight`, [E, kvDim], "f16", (data, random) => {
      randomRows(data, random, fromResidual(counterLayer ? headDim : 0, kvDim, 1));
      if (counterLayer) data[0 * E + MARK] = 1 / normalizedMark;
    });
    add(`${prefix}attn_output.weight`, [E, E], "f16", (data, random) => {
      // Rows are output channels; the fixed channels get nothing but the counter.
      const step = ATTENTION_STEP / Math.sqrt(E * shape.blockCount);
      randomRows(data, random, { inputs: E, fromInput: 0, fromRow: CONTENT, toRow: E, outputStd: step, inputStd: 0.7 });
      if (!counterLayer) return;
      for (let channel = CONTENT; channel < E; channel++) data.fill(0, channel * E, channel * E + headDim);
      data[CTX * E + 0] = 1;
    });
    add(`${prefix}ffn_norm.weight`, [E], "f32", ones);
    add(`${prefix}ffn_gate.weight`, [E, F], "f16", (data, random) => randomRows(data, random, fromResidual(0, F, 1)));
    add(`${prefix}ffn_up.weight`, [E, F], "f16", (data, random) => randomRows(data, random, fromResidual(0, F, 1)));
    add(`${prefix}ffn_down.weight`, [F, E], "f16", (data, random) =>
      randomRows(data, random, { inputs: F, fromInput: 0, fromRow: CONTENT, toRow: E, outputStd: FEED_FORWARD_STEP / Math.sqrt(E * shape.blockCount), inputStd: 0.6 }),
    );
  }

  add("output_norm.weight", [E], "f32", (data) => {
    data.fill(1);
    data.fill(FIXED_CHANNEL_NORM, 0, CONTENT);
  });
  add("output.weight", [E, V], "f16", (data, random) => {
    // A channel's logit contribution is weight * value * sqrt(E) / |residual| * output_norm;
    // the content part of the residual ends up with a norm of about 0.6-1.5.
    const fixed = 1 / (Math.sqrt(E) * FIXED_CHANNEL_NORM);
    const contentScale = (UNIFORM_TO_UNIT * CONTENT_LOGIT_STD) / (Math.sqrt(E) * 0.6);
    for (let token = 0; token < V; token++) {
      const base = token * E;
      if (token === IM_END) {
        data[base + BIAS] = END_LOGIT * fixed;
        data[base + CTX] = -END_PENALTY * fixed;
        for (let channel = CONTENT; channel < E; channel++) data[base + channel] = random() * contentScale * (END_JITTER / CONTENT_LOGIT_STD);
      } else if (!vocabulary.allowed[token]) {
        data[base + BIAS] = FORBIDDEN_LOGIT * fixed;
      } else {
        data[base + BIAS] = vocabulary.prior[token]! * fixed;
        for (let channel = CONTENT; channel < E; channel++) data[base + channel] = random() * contentScale;
      }
    }
  });

  const parameters = list.reduce((sum, tensor) => sum + tensor.shape.reduce((product, size) => product * size, 1), 0);
  return { list, parameters };
}

/** Rotary pairs are (2i, 2i+1) with theta_i = base^(-2i/headDim) (llama's "normal" rope). */
function rotaryPairRow(headDim: number, theta: number): number {
  const pair = Math.round((-Math.log(theta) / Math.log(ROPE_FREQ_BASE)) * (headDim / 2));
  return 2 * pair;
}
function slowPairRow(headDim: number): number {
  return headDim - 2;
}

const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function buildMetadata(spec: TestModelSpec, shape: ModelShape, vocabulary: Vocabulary): Array<[string, GgufWriterValue]> {
  const headDim = shape.embeddingLength / shape.headCount;
  return [
    ["general.architecture", gguf.string("llama")],
    ["general.name", gguf.string(`switchboard-test-${spec}`)],
    ["general.description", gguf.string("Random-weight test model generated by Switchboard; its replies are printable noise.")],
    ["general.file_type", gguf.u32(1)],
    ["llama.context_length", gguf.u32(shape.contextLength)],
    ["llama.embedding_length", gguf.u32(shape.embeddingLength)],
    ["llama.block_count", gguf.u32(shape.blockCount)],
    ["llama.feed_forward_length", gguf.u32(shape.feedForwardLength)],
    ["llama.attention.head_count", gguf.u32(shape.headCount)],
    ["llama.attention.head_count_kv", gguf.u32(shape.headCountKv)],
    ["llama.attention.layer_norm_rms_epsilon", gguf.f32(1e-5)],
    ["llama.rope.dimension_count", gguf.u32(headDim)],
    ["llama.rope.freq_base", gguf.f32(ROPE_FREQ_BASE)],
    ["llama.vocab_size", gguf.u32(vocabulary.tokens.length)],
    ["tokenizer.ggml.model", gguf.string("llama")],
    ["tokenizer.ggml.tokens", gguf.strings(vocabulary.tokens)],
    ["tokenizer.ggml.scores", gguf.f32s(vocabulary.scores)],
    ["tokenizer.ggml.token_type", gguf.i32s(vocabulary.types)],
    ["tokenizer.ggml.bos_token_id", gguf.u32(BOS)],
    ["tokenizer.ggml.eos_token_id", gguf.u32(IM_END)],
    ["tokenizer.ggml.unknown_token_id", gguf.u32(UNK)],
    ["tokenizer.ggml.padding_token_id", gguf.u32(EOS_CLASSIC)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
    ["tokenizer.ggml.add_eos_token", gguf.bool(false)],
    // No space before text that follows a special token: ChatML turns stay exact.
    ["tokenizer.ggml.add_space_prefix", gguf.bool(false)],
    ["tokenizer.chat_template", gguf.string(CHATML_TEMPLATE)],
  ];
}

/**
 * What {@link generateTestModel} writes for `spec`, before writing: metadata
 * and tensors (whose data is computed when written). Tests change a copy to
 * build inconsistent files.
 */
export function testModelContent(spec: TestModelSpec): GgufFileContent & { readonly parameters: number } {
  const shape = SHAPES[spec];
  if (shape === undefined) throw new Error(`unknown test model spec '${String(spec)}'`);
  const vocabulary = buildVocabulary();
  const tensors = buildTensors(shape, vocabulary);
  return { metadata: buildMetadata(spec, shape, vocabulary), tensors: tensors.list, parameters: tensors.parameters };
}

/**
 * Writes a random-weight llama GGUF for `spec` to `outputPath` (overwriting
 * it). Deterministic: the same spec gives the same bytes on every run.
 *
 * The vocabulary is SentencePiece-style with byte fallback: all 256 byte
 * tokens, `<unk>`, `<s>`, `</s>`, `<|im_start|>`, `<|im_end|>` (the EOS), the
 * space piece and a few merges; the chat template is ChatML. Replies contain
 * only printable ASCII and end with `<|im_end|>` about 35-50 tokens after the
 * turn starts (see the constants above for the mechanism). A raw completion
 * measures from `<s>`, so a raw prompt longer than ~50 tokens gets an empty
 * or very short completion.
 */
export async function generateTestModel(spec: TestModelSpec, outputPath: string): Promise<GeneratedTestModel> {
  const content = testModelContent(spec);
  const written = await writeGgufFile(outputPath, content);
  return { path: outputPath, parameters: content.parameters, bytes: written.bytes, sha256: written.sha256 };
}

/**
 * Returns the path of `<directory>/switchboard-test-<spec>-v<GENERATOR_VERSION>.gguf`,
 * generating it first if it is not there. The file appears atomically (written
 * under a temporary name, then renamed), so concurrent callers and crashed
 * runs never leave a partial model under the final name.
 */
export async function ensureTestModel(spec: TestModelSpec, directory: string): Promise<string> {
  const path = join(directory, testModelFileName(spec));
  try {
    if ((await stat(path)).isFile()) return path;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(directory, { recursive: true });
  const temporary = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  try {
    await generateTestModel(spec, temporary);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return path;
}
