import { basename } from "node:path";
import { alignUp, byteTokenText } from "./gguf-format.js";
import { GgufFormatError, readGgufHeader } from "./gguf-reader.js";
import type { GgufHeader, GgufMetadataEntry, GgufReadLimits, GgufTensorInfo } from "./gguf-reader.js";

/** The vocabulary, as far as the checker read it. */
export interface GgufTokenizerSummary {
  /** `tokenizer.ggml.model`: "llama" (SentencePiece), "gpt2" (BPE), ... */
  readonly model: string | undefined;
  readonly tokenCount: number;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly chatTemplate: string | undefined;
}

/** What {@link inspectGguf} learned about a GGUF file, and what is wrong with it. */
export interface GgufSummary {
  readonly path: string;
  readonly fileSize: number;
  readonly version: number;
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  /** `general.architecture`. */
  readonly architecture: string | undefined;
  /** `general.name`. */
  readonly name: string | undefined;
  readonly contextLength: number | undefined;
  readonly embeddingLength: number | undefined;
  readonly blockCount: number | undefined;
  /** Sum of all tensors' elements. */
  readonly parameterCount: number;
  /** Bytes of tensor data the header describes (without padding). */
  readonly tensorDataBytes: number;
  readonly tokenizer: GgufTokenizerSummary | undefined;
  readonly metadata: ReadonlyMap<string, GgufMetadataEntry>;
  readonly tensors: readonly GgufTensorInfo[];
  /** Reasons llama.cpp would refuse the file or crash on it; {@link checkGguf} throws when there is any. */
  readonly problems: readonly string[];
  /** Things worth logging that do not stop the file from loading. */
  readonly warnings: readonly string[];
}

/**
 * A GGUF file the serving process must not load: unreadable, damaged, or
 * consistent-looking but inconsistent metadata that would abort the whole
 * process inside llama.cpp. The message names the file and every problem.
 */
export class GgufCheckError extends Error {
  /** The file that was checked. */
  readonly path: string;
  /** Every problem found, one sentence each. */
  readonly problems: readonly string[];

  constructor(path: string, problems: readonly string[], options?: { cause?: unknown }) {
    const list = problems.length === 1 ? problems[0]! : problems.map((problem, index) => `(${index + 1}) ${problem}`).join("; ");
    super(`GGUF file "${basename(path)}" cannot be loaded safely: ${list}`, options);
    this.name = "GgufCheckError";
    this.path = path;
    this.problems = problems;
  }
}

/** Tokenizer models this llama.cpp knows (`tokenizer.ggml.model`). */
const KNOWN_TOKENIZERS = new Set(["llama", "gpt2", "bert", "t5", "rwkv", "plamo2", "none", "no_vocab"]);
const SPECIAL_TOKEN_KEYS = ["bos", "eos", "unknown", "seperator", "padding", "eot", "eom", "cls", "mask"];

type Problems = string[];

function entryValue(header: GgufHeader, key: string): GgufMetadataEntry["value"] | undefined {
  return header.metadata.get(key)?.value;
}

function isIntegerType(type: string): boolean {
  return /^u?int(8|16|32|64)$/.test(type);
}

/** An integer metadata value; records a problem when it has the wrong type, or is missing and required. */
function readInteger(header: GgufHeader, key: string, problems: Problems, required: boolean): number | undefined {
  const entry = header.metadata.get(key);
  if (entry === undefined) {
    if (required) problems.push(`missing required metadata ${key}`);
    return undefined;
  }
  if (!isIntegerType(entry.type) || typeof entry.value !== "number") {
    problems.push(`metadata ${key} must be an integer, got ${entry.type}`);
    return undefined;
  }
  return entry.value;
}

/** A value llama.cpp reads "per layer": one integer for all layers, or an array with one per layer. */
function readPerLayer(header: GgufHeader, key: string, layers: number | undefined, problems: Problems, required: boolean): number[] | undefined {
  const entry = header.metadata.get(key);
  if (entry === undefined) {
    if (required) problems.push(`missing required metadata ${key}`);
    return undefined;
  }
  const value = entry.value;
  if (typeof value === "number" && isIntegerType(entry.type)) return layers === undefined ? [value] : new Array<number>(layers).fill(value);
  if (typeof value === "object" && value.kind === "array" && isIntegerType(value.elementType)) {
    if (value.values === undefined || (layers !== undefined && value.length !== layers)) {
      problems.push(`metadata ${key} has ${value.length} per-layer values, but there are ${layers ?? "?"} layers`);
      return undefined;
    }
    return value.values.map(Number);
  }
  problems.push(`metadata ${key} must be an integer or an array of integers, got ${entry.type}`);
  return undefined;
}

function describeShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** ggml compares all four dimensions, with missing ones equal to 1. */
function sameShape(actual: readonly number[], expected: readonly number[]): boolean {
  for (let dimension = 0; dimension < 4; dimension++) {
    if ((actual[dimension] ?? 1) !== (expected[dimension] ?? 1)) return false;
  }
  return true;
}

function checkDataSection(header: GgufHeader, problems: Problems): void {
  if (header.alignment === 0) return;
  let expected = 0;
  let layoutReported = false;
  let truncatedCount = 0;
  let firstTruncated: GgufTensorInfo | undefined;
  let dataEnd = header.dataOffset;
  for (const tensor of header.tensors) {
    if (tensor.byteSize === undefined) {
      layoutReported = true; // the rest of the layout cannot be followed
      continue;
    }
    if (!layoutReported && tensor.offset !== expected) {
      const why = tensor.offset % header.alignment !== 0 ? `is not a multiple of the ${header.alignment}-byte alignment` : `should be ${expected}: llama.cpp expects tensors packed in order`;
      problems.push(`tensor '${tensor.name}' data offset ${tensor.offset} ${why}`);
      layoutReported = true;
    }
    expected = tensor.offset + alignUp(tensor.byteSize, header.alignment);
    const end = tensor.fileOffset + tensor.byteSize;
    dataEnd = Math.max(dataEnd, end);
    if (end > header.fileSize) {
      truncatedCount += 1;
      firstTruncated ??= tensor;
    }
  }
  if (firstTruncated !== undefined) {
    problems.push(
      `file is truncated: it has ${header.fileSize} bytes but its tensor data runs to byte ${dataEnd} ` +
        `(${truncatedCount} of ${header.tensors.length} tensors reach past the end, the first is '${firstTruncated.name}')`,
    );
  }
}

interface Vocabulary {
  readonly model: string | undefined;
  readonly tokens: readonly string[] | undefined;
}

function checkTokenizer(header: GgufHeader, problems: Problems, warnings: string[]): Vocabulary {
  const modelEntry = header.metadata.get("tokenizer.ggml.model");
  let model: string | undefined;
  if (modelEntry === undefined) {
    problems.push("missing tokenizer.ggml.model: the file has no vocabulary");
  } else if (typeof modelEntry.value !== "string") {
    problems.push(`tokenizer.ggml.model must be a string, got ${modelEntry.type}`);
  } else {
    model = modelEntry.value;
    if (model === "none" || model === "no_vocab") problems.push(`the file has no vocabulary (tokenizer.ggml.model = "${model}"), so it cannot read or write text`);
    else if (!KNOWN_TOKENIZERS.has(model)) warnings.push(`tokenizer.ggml.model "${model}" is not one this checker knows; llama.cpp may refuse it`);
  }
  if (model === "none" || model === "no_vocab") return { model, tokens: undefined };

  const tokensEntry = header.metadata.get("tokenizer.ggml.tokens");
  const tokensValue = tokensEntry?.value;
  let tokens: readonly string[] | undefined;
  if (tokensEntry === undefined) {
    problems.push("missing tokenizer.ggml.tokens: the file has no vocabulary");
  } else if (typeof tokensValue !== "object" || tokensValue.elementType !== "string" || tokensValue.values === undefined) {
    problems.push(`tokenizer.ggml.tokens must be an array of strings, got ${tokensEntry.type}`);
  } else if (tokensValue.length === 0) {
    problems.push("tokenizer.ggml.tokens is empty");
  } else {
    tokens = tokensValue.values as readonly string[];
  }
  if (tokens === undefined) return { model, tokens };

  // llama.cpp indexes these arrays by token id without checking their length.
  for (const key of ["tokenizer.ggml.token_type", "tokenizer.ggml.scores"]) {
    const entry = header.metadata.get(key);
    if (entry === undefined) continue;
    const value = entry.value;
    if (typeof value !== "object") problems.push(`${key} must be an array, got ${entry.type}`);
    else if (value.length !== tokens.length) problems.push(`${key} has ${value.length} entries but there are ${tokens.length} tokens`);
  }
  if (model === "llama" && !header.metadata.has("tokenizer.ggml.token_type")) {
    // Loads, but byte and control tokens then read and print as plain text ("<0x0A>", "<|im_end|>").
    warnings.push("no tokenizer.ggml.token_type: llama.cpp treats every token as text, so byte and control tokens will not work");
  }
  if (model === "gpt2" && !header.metadata.has("tokenizer.ggml.merges")) problems.push("missing tokenizer.ggml.merges, which a gpt2 (BPE) vocabulary needs");

  if (model === "llama") {
    // SentencePiece byte fallback: llama.cpp looks up "<0xXX>", then the byte as a one-character
    // token, and aborts the process when neither exists and the input contains that byte.
    const known = new Set(tokens);
    const missing: string[] = [];
    for (let byte = 0; byte < 256; byte++) {
      if (!known.has(byteTokenText(byte)) && !(byte < 0x80 && known.has(String.fromCharCode(byte)))) missing.push(byteTokenText(byte));
    }
    if (missing.length > 0) {
      const examples = missing.slice(0, 4).join(", ") + (missing.length > 4 ? ", ..." : "");
      problems.push(`vocabulary lacks ${missing.length} of the 256 byte tokens a "llama" (SentencePiece) vocabulary needs (${examples})`);
    }
  }

  for (const name of SPECIAL_TOKEN_KEYS) {
    const key = `tokenizer.ggml.${name}_token_id`;
    const entry = header.metadata.get(key);
    if (entry === undefined) continue;
    if (typeof entry.value !== "number" || !isIntegerType(entry.type)) warnings.push(`${key} is not an integer (${entry.type}); llama.cpp ignores it`);
    else if (entry.value === -1 || entry.value === 0xffffffff) continue; // the converters' way of saying "none"
    else if (entry.value < 0 || entry.value >= tokens.length) warnings.push(`${key} ${entry.value} is outside the ${tokens.length}-token vocabulary; llama.cpp ignores it`);
  }
  return { model, tokens };
}

/** The strict checks for `general.architecture = "llama"`, which llama.cpp trusts without checking. */
function checkLlama(header: GgufHeader, vocabulary: Vocabulary, problems: Problems, warnings: string[]): void {
  const arch = "llama";
  const layers = readInteger(header, `${arch}.block_count`, [], false);
  const embedding = readInteger(header, `${arch}.embedding_length`, [], false);
  const feedForward = readPerLayer(header, `${arch}.feed_forward_length`, layers, problems, true);
  const heads = readPerLayer(header, `${arch}.attention.head_count`, layers, problems, true);
  const headsKv = readPerLayer(header, `${arch}.attention.head_count_kv`, layers, problems, false) ?? heads;
  const epsilon = header.metadata.get(`${arch}.attention.layer_norm_rms_epsilon`);
  if (epsilon === undefined) problems.push(`missing required metadata ${arch}.attention.layer_norm_rms_epsilon`);
  else if (!(epsilon.type === "float32" || epsilon.type === "float64") || typeof epsilon.value !== "number") {
    problems.push(`metadata ${arch}.attention.layer_norm_rms_epsilon must be a float, got ${epsilon.type}`);
  }
  const experts = readInteger(header, `${arch}.expert_count`, problems, false) ?? 0;
  if (experts > 0) {
    const used = readInteger(header, `${arch}.expert_used_count`, problems, true);
    if (used !== undefined && (used < 1 || used > experts)) problems.push(`${arch}.expert_used_count ${used} must be between 1 and expert_count ${experts}`);
  }

  for (const [key, values] of [
    ["feed_forward_length", feedForward],
    ["attention.head_count", heads],
    ["attention.head_count_kv", headsKv],
  ] as const) {
    if (values?.some((value) => value <= 0)) problems.push(`${arch}.${key} must be positive, got ${values.find((value) => value <= 0)}`);
  }
  if (heads === undefined || embedding === undefined || layers === undefined || heads.some((value) => value <= 0)) return;
  if (headsKv?.some((value, layer) => value <= 0 || heads[layer]! % value !== 0)) {
    problems.push(`${arch}.attention.head_count (${heads[0]}) must be a multiple of attention.head_count_kv (${headsKv?.[0]})`);
    return;
  }
  const keyLength = readInteger(header, `${arch}.attention.key_length`, problems, false);
  const valueLength = readInteger(header, `${arch}.attention.value_length`, problems, false);
  if ((keyLength === undefined || valueLength === undefined) && embedding % heads[0]! !== 0) {
    problems.push(`${arch}.embedding_length ${embedding} is not divisible by attention.head_count ${heads[0]}`);
    return;
  }
  const headDimK = keyLength ?? embedding / heads[0]!;
  const headDimV = valueLength ?? embedding / heads[0]!;
  const rotary = readInteger(header, `${arch}.rope.dimension_count`, problems, false);
  if (rotary !== undefined && rotary !== headDimK) problems.push(`${arch}.rope.dimension_count ${rotary} must equal the head size ${headDimK}`);

  const vocabularySize = vocabulary.tokens?.length;
  const declaredVocabulary = readInteger(header, `${arch}.vocab_size`, warnings, false);
  if (declaredVocabulary !== undefined && vocabularySize !== undefined && declaredVocabulary !== vocabularySize) {
    warnings.push(`${arch}.vocab_size ${declaredVocabulary} differs from the ${vocabularySize} tokens in the vocabulary`);
  }

  const tensors = new Map(header.tensors.map((tensor) => [tensor.name, tensor]));
  // A split model (model-00001-of-00003.gguf) keeps the other tensors in the other parts.
  const splitCount = readInteger(header, "split.count", warnings, false) ?? 1;
  if (splitCount > 1) warnings.push(`this is part of a ${splitCount}-file split model: tensors in the other parts are not checked`);
  const expect = (name: string, shape: Array<number | undefined>, required: boolean): void => {
    const tensor = tensors.get(name);
    if (tensor === undefined) {
      if (required && splitCount <= 1) problems.push(`missing tensor '${name}'`);
      return;
    }
    if (shape.some((size) => size === undefined)) return;
    if (!sameShape(tensor.shape, shape as number[])) {
      problems.push(`tensor '${name}' has shape ${describeShape(tensor.shape)}, but the metadata needs ${describeShape(shape as number[])}`);
    }
  };
  expect("token_embd.weight", [embedding, vocabularySize], true);
  expect("output_norm.weight", [embedding], true);
  expect("output.weight", [embedding, vocabularySize], false);
  for (let layer = 0; layer < layers; layer++) {
    const block = `blk.${layer}.`;
    const kv = headsKv![layer]!;
    const ff = feedForward?.[layer];
    expect(`${block}attn_norm.weight`, [embedding], true);
    expect(`${block}attn_q.weight`, [embedding, headDimK * heads[layer]!], true);
    expect(`${block}attn_k.weight`, [embedding, headDimK * kv], true);
    expect(`${block}attn_v.weight`, [embedding, headDimV * kv], true);
    expect(`${block}attn_output.weight`, [headDimV * heads[layer]!, embedding], true);
    expect(`${block}ffn_norm.weight`, [embedding], true);
    if (experts === 0) {
      expect(`${block}ffn_gate.weight`, [embedding, ff], true);
      expect(`${block}ffn_down.weight`, [ff, embedding], true);
      expect(`${block}ffn_up.weight`, [embedding, ff], true);
    } else {
      expect(`${block}ffn_gate_inp.weight`, [embedding, experts], true);
      expect(`${block}ffn_gate_exps.weight`, [embedding, ff, experts], false);
      expect(`${block}ffn_down_exps.weight`, [ff, embedding, experts], false);
      expect(`${block}ffn_up_exps.weight`, [embedding, ff, experts], false);
    }
  }
  for (const tensor of header.tensors) {
    const block = /^blk\.(\d+)\./.exec(tensor.name);
    if (block !== null && Number(block[1]) >= layers) problems.push(`tensor '${tensor.name}' is in block ${block[1]}, but ${arch}.block_count is ${layers}`);
  }
}

/** Checks every architecture gets: the keys llama.cpp reads for all of them. */
function checkArchitecture(header: GgufHeader, problems: Problems): string | undefined {
  const entry = header.metadata.get("general.architecture");
  if (entry === undefined) {
    problems.push("missing general.architecture");
    return undefined;
  }
  if (typeof entry.value !== "string") {
    problems.push(`general.architecture must be a string, got ${entry.type}`);
    return undefined;
  }
  const arch = entry.value;
  for (const key of ["context_length", "embedding_length", "block_count"]) {
    const value = readInteger(header, `${arch}.${key}`, problems, true);
    if (value !== undefined && value <= 0) problems.push(`${arch}.${key} must be positive, got ${value}`);
  }
  return arch;
}

function summarize(path: string, header: GgufHeader, problems: string[], warnings: string[]): GgufSummary {
  const string = (key: string): string | undefined => {
    const value = entryValue(header, key);
    return typeof value === "string" ? value : undefined;
  };
  const integer = (key: string): number | undefined => {
    const value = entryValue(header, key);
    return typeof value === "number" && Number.isInteger(value) ? value : undefined;
  };
  const architecture = string("general.architecture");
  const tokens = entryValue(header, "tokenizer.ggml.tokens");
  return {
    path,
    fileSize: header.fileSize,
    version: header.version,
    alignment: header.alignment,
    dataOffset: header.dataOffset,
    architecture,
    name: string("general.name"),
    contextLength: architecture === undefined ? undefined : integer(`${architecture}.context_length`),
    embeddingLength: architecture === undefined ? undefined : integer(`${architecture}.embedding_length`),
    blockCount: architecture === undefined ? undefined : integer(`${architecture}.block_count`),
    parameterCount: header.tensors.reduce((sum, tensor) => sum + tensor.elements, 0),
    tensorDataBytes: header.tensors.reduce((sum, tensor) => sum + (tensor.byteSize ?? 0), 0),
    tokenizer:
      typeof tokens === "object"
        ? {
            model: string("tokenizer.ggml.model"),
            tokenCount: tokens.length,
            bosTokenId: integer("tokenizer.ggml.bos_token_id"),
            eosTokenId: integer("tokenizer.ggml.eos_token_id"),
            chatTemplate: string("tokenizer.chat_template"),
          }
        : undefined,
    metadata: header.metadata,
    tensors: header.tensors,
    problems,
    warnings,
  };
}

/**
 * Reads a GGUF file's header (never its tensor data; bounded by `limits`)
 * and judges it: `problems` lists what would make llama.cpp refuse the file
 * or abort the process, `warnings` the rest. Every architecture gets the
 * generic checks (header, metadata types, tensor data inside the file, a
 * usable vocabulary); `llama` also gets the strict metadata and tensor-shape
 * checks. Throws {@link GgufCheckError} only when the file cannot be read as
 * GGUF at all.
 */
export async function inspectGguf(path: string, limits?: GgufReadLimits): Promise<GgufSummary> {
  let header: GgufHeader;
  try {
    header = await readGgufHeader(path, limits);
  } catch (error) {
    if (error instanceof GgufFormatError) throw new GgufCheckError(path, [error.message], { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === "string") throw new GgufCheckError(path, [`cannot read the file (${code})`], { cause: error });
    throw error;
  }
  const problems = [...header.problems];
  const warnings: string[] = [];
  checkDataSection(header, problems);
  const architecture = checkArchitecture(header, problems);
  const vocabulary = checkTokenizer(header, problems, warnings);
  if (architecture === "llama") checkLlama(header, vocabulary, problems, warnings);
  else if (architecture !== undefined) {
    warnings.push(`architecture "${architecture}" gets only the generic checks (header, tensor data, vocabulary); its hyperparameters and tensor shapes are not verified`);
  }
  return summarize(path, header, problems, warnings);
}

/**
 * Refuses a GGUF file the serving process must not load: throws
 * {@link GgufCheckError} naming the file and every problem
 * {@link inspectGguf} found; resolves when the file passes. (Call
 * {@link inspectGguf} for the warnings and the details.)
 */
export async function checkGguf(path: string, limits?: GgufReadLimits): Promise<void> {
  const summary = await inspectGguf(path, limits);
  if (summary.problems.length > 0) throw new GgufCheckError(path, summary.problems);
}
