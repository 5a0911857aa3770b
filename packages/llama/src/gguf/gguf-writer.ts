import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { endianness } from "node:os";
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgmlType,
  GgufValueType,
  alignUp,
} from "./gguf-format.js";

/** A scalar metadata type name, as the writer spells it. */
export type GgufScalarTypeName = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "u64" | "i64" | "f32" | "f64" | "bool" | "string";

type ScalarValue = number | bigint | boolean | string;

/** One metadata value to write: a typed scalar or a typed array of scalars. */
export type GgufWriterValue =
  | { readonly type: GgufScalarTypeName; readonly value: ScalarValue }
  | { readonly type: "array"; readonly elementType: GgufScalarTypeName; readonly values: readonly ScalarValue[] };

/** Constructors for typed metadata values. */
export const gguf = {
  u8: (value: number): GgufWriterValue => ({ type: "u8", value }),
  i8: (value: number): GgufWriterValue => ({ type: "i8", value }),
  u16: (value: number): GgufWriterValue => ({ type: "u16", value }),
  i16: (value: number): GgufWriterValue => ({ type: "i16", value }),
  u32: (value: number): GgufWriterValue => ({ type: "u32", value }),
  i32: (value: number): GgufWriterValue => ({ type: "i32", value }),
  u64: (value: number | bigint): GgufWriterValue => ({ type: "u64", value }),
  i64: (value: number | bigint): GgufWriterValue => ({ type: "i64", value }),
  f32: (value: number): GgufWriterValue => ({ type: "f32", value }),
  f64: (value: number): GgufWriterValue => ({ type: "f64", value }),
  bool: (value: boolean): GgufWriterValue => ({ type: "bool", value }),
  string: (value: string): GgufWriterValue => ({ type: "string", value }),
  array: (elementType: GgufScalarTypeName, values: readonly ScalarValue[]): GgufWriterValue => ({ type: "array", elementType, values }),
  strings: (values: readonly string[]): GgufWriterValue => ({ type: "array", elementType: "string", values }),
  i32s: (values: readonly number[]): GgufWriterValue => ({ type: "array", elementType: "i32", values }),
  u32s: (values: readonly number[]): GgufWriterValue => ({ type: "array", elementType: "u32", values }),
  f32s: (values: readonly number[]): GgufWriterValue => ({ type: "array", elementType: "f32", values }),
};

/** A tensor to write. */
export interface GgufTensorInput {
  /** Shorter than 64 bytes, unique in the file. */
  readonly name: string;
  /** ggml order: `shape[0]` is the fastest-varying (input) dimension. 1 to 4 dimensions. */
  readonly shape: readonly number[];
  /** Storage type; data is given as f32 either way and converted on write. */
  readonly type: "f32" | "f16";
  /** Row-major in ggml order (`shape[0]` contiguous); a function is called once, at write time, so large tensors are never all in memory. */
  readonly data: Float32Array | (() => Float32Array);
}

/** Everything in a GGUF file. Metadata keys are written in the order given. */
export interface GgufFileContent {
  readonly metadata: ReadonlyArray<readonly [key: string, value: GgufWriterValue]>;
  readonly tensors: readonly GgufTensorInput[];
  /** Data alignment in bytes; written as `general.alignment` when not 32. Default 32. */
  readonly alignment?: number;
}

/** What {@link writeGgufFile} wrote. */
export interface GgufWriteResult {
  readonly bytes: number;
  readonly sha256: string;
}

const SCALAR_TYPES: Record<GgufScalarTypeName, number> = {
  u8: GgufValueType.UINT8,
  i8: GgufValueType.INT8,
  u16: GgufValueType.UINT16,
  i16: GgufValueType.INT16,
  u32: GgufValueType.UINT32,
  i32: GgufValueType.INT32,
  u64: GgufValueType.UINT64,
  i64: GgufValueType.INT64,
  f32: GgufValueType.FLOAT32,
  f64: GgufValueType.FLOAT64,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
};

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private buffer = Buffer.alloc(64 * 1024);
  length = 0;

  private reserve(size: number): void {
    if (this.length + size <= this.buffer.length) return;
    const next = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + size));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer.writeUInt8(value, this.length);
    this.length += 1;
  }
  i8(value: number): void {
    this.reserve(1);
    this.buffer.writeInt8(value, this.length);
    this.length += 1;
  }
  u16(value: number): void {
    this.reserve(2);
    this.buffer.writeUInt16LE(value, this.length);
    this.length += 2;
  }
  i16(value: number): void {
    this.reserve(2);
    this.buffer.writeInt16LE(value, this.length);
    this.length += 2;
  }
  u32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
  }
  i32(value: number): void {
    this.reserve(4);
    this.buffer.writeInt32LE(value, this.length);
    this.length += 4;
  }
  u64(value: number | bigint): void {
    this.reserve(8);
    this.buffer.writeBigUInt64LE(BigInt(value), this.length);
    this.length += 8;
  }
  i64(value: number | bigint): void {
    this.reserve(8);
    this.buffer.writeBigInt64LE(BigInt(value), this.length);
    this.length += 8;
  }
  f32(value: number): void {
    this.reserve(4);
    this.buffer.writeFloatLE(value, this.length);
    this.length += 4;
  }
  f64(value: number): void {
    this.reserve(8);
    this.buffer.writeDoubleLE(value, this.length);
    this.length += 8;
  }
  string(value: string): void {
    const bytes = Buffer.from(value, "utf8");
    this.u64(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buffer, this.length);
    this.length += bytes.length;
  }
  pad(alignment: number): void {
    const target = alignUp(this.length, alignment);
    this.reserve(target - this.length);
    this.buffer.fill(0, this.length, target);
    this.length = target;
  }
  contents(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

function writeScalar(sink: ByteSink, type: GgufScalarTypeName, value: ScalarValue, key: string): void {
  const expect = (kind: "number" | "boolean" | "string"): void => {
    if (typeof value !== kind && !(kind === "number" && typeof value === "bigint")) {
      throw new TypeError(`GGUF metadata '${key}': ${type} value must be a ${kind}, got ${typeof value}`);
    }
  };
  switch (type) {
    case "bool":
      expect("boolean");
      sink.u8(value ? 1 : 0);
      return;
    case "string":
      expect("string");
      sink.string(value as string);
      return;
    case "u64":
    case "i64":
      expect("number");
      sink[type](value as number | bigint);
      return;
    default:
      expect("number");
      sink[type](Number(value));
  }
}

function encodeHeader(content: GgufFileContent, alignment: number): { header: Buffer; offsets: number[]; sizes: number[] } {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(3);
  sink.u64(content.tensors.length);
  const metadata = [...content.metadata];
  const keys = new Set(metadata.map(([key]) => key));
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !keys.has("general.alignment")) metadata.push(["general.alignment", gguf.u32(alignment)]);
  if (keys.size !== content.metadata.length) throw new Error("GGUF metadata keys must be unique");
  sink.u64(metadata.length);
  for (const [key, value] of metadata) {
    sink.string(key);
    if (value.type === "array") {
      sink.u32(GgufValueType.ARRAY);
      sink.u32(SCALAR_TYPES[value.elementType]);
      sink.u64(value.values.length);
      for (const element of value.values) writeScalar(sink, value.elementType, element, key);
    } else {
      sink.u32(SCALAR_TYPES[value.type]);
      writeScalar(sink, value.type, value.value, key);
    }
  }

  const names = new Set<string>();
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const tensor of content.tensors) {
    if (names.has(tensor.name)) throw new Error(`GGUF tensor '${tensor.name}' is written twice`);
    names.add(tensor.name);
    if (Buffer.byteLength(tensor.name) >= GGML_MAX_NAME) throw new Error(`GGUF tensor name '${tensor.name}' is too long`);
    if (tensor.shape.length < 1 || tensor.shape.length > GGML_MAX_DIMS || tensor.shape.some((size) => !Number.isSafeInteger(size) || size < 1)) {
      throw new Error(`GGUF tensor '${tensor.name}' has an invalid shape [${tensor.shape.join(", ")}]`);
    }
    sink.string(tensor.name);
    sink.u32(tensor.shape.length);
    for (const size of tensor.shape) sink.u64(size);
    sink.u32(tensor.type === "f32" ? GgmlType.F32 : GgmlType.F16);
    sink.u64(offset);
    const elements = tensor.shape.reduce((product, size) => product * size, 1);
    const size = elements * (tensor.type === "f32" ? 4 : 2);
    offsets.push(offset);
    sizes.push(size);
    offset += alignUp(size, alignment);
  }
  sink.pad(alignment);
  return { header: sink.contents(), offsets, sizes };
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary32 to binary16 bits, rounding to nearest even (what ggml's converter does). */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) === 1)) half += 1;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half += 1; // may carry into the exponent, which is correct
  return sign | half;
}

function tensorBytes(tensor: GgufTensorInput, expectedElements: number): Buffer {
  const data = typeof tensor.data === "function" ? tensor.data() : tensor.data;
  if (data.length !== expectedElements) {
    throw new Error(`GGUF tensor '${tensor.name}' has ${data.length} values, its shape needs ${expectedElements}`);
  }
  if (tensor.type === "f32") return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const half = new Uint16Array(data.length);
  for (let index = 0; index < data.length; index++) half[index] = float32ToFloat16Bits(data[index]!);
  return Buffer.from(half.buffer);
}

/**
 * Writes a GGUF v3 file: header, metadata, tensor infos, then each tensor's
 * data padded to the alignment (llama.cpp requires each offset to follow the
 * previous tensor's padded end). Validates names and shapes; writes whatever
 * metadata it is given, consistent or not, so tests can build bad files too.
 */
export async function writeGgufFile(path: string, content: GgufFileContent): Promise<GgufWriteResult> {
  // Typed arrays are written as they sit in memory; GGUF is little-endian.
  if (endianness() !== "LE") throw new Error("writeGgufFile needs a little-endian machine");
  const alignment = content.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`GGUF alignment must be a power of two, got ${alignment}`);
  }
  const { header, offsets, sizes } = encodeHeader(content, alignment);
  const hash = createHash("sha256");
  const file = await open(path, "w");
  let written = 0;
  const put = async (bytes: Uint8Array): Promise<void> => {
    hash.update(bytes);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await file.write(bytes, done, bytes.length - done);
      done += bytesWritten;
    }
    written += bytes.length;
  };
  try {
    await put(header);
    const dataStart = written;
    for (const [index, tensor] of content.tensors.entries()) {
      const size = sizes[index]!;
      const padding = dataStart + offsets[index]! - written;
      if (padding > 0) await put(Buffer.alloc(padding));
      await put(tensorBytes(tensor, size / (tensor.type === "f32" ? 4 : 2)));
    }
    const end = alignUp(written - dataStart, alignment) + dataStart;
    if (end > written) await put(Buffer.alloc(end - written));
  } finally {
    await file.close();
  }
  return { bytes: written, sha256: hash.digest("hex") };
}
