import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGML_TYPES,
  GGUF_MAGIC,
  GGUF_SUPPORTED_VERSIONS,
  GGUF_VALUE_TYPE_NAMES,
  GGUF_VALUE_TYPE_SIZES,
  GgufValueType,
} from "./gguf-format.js";

/** A scalar metadata value. 64-bit integers are numbers when they fit exactly, bigints otherwise. */
export type GgufScalar = number | bigint | boolean | string;

/** An array metadata value. Long arrays keep only their length (see {@link GgufReadLimits}). */
export interface GgufArrayValue {
  readonly kind: "array";
  /** Element type name: "uint32", "string", ... */
  readonly elementType: string;
  readonly length: number;
  /** The elements, when kept. */
  readonly values: readonly GgufScalar[] | undefined;
}

export type GgufValue = GgufScalar | GgufArrayValue;

/** One metadata entry as stored. */
export interface GgufMetadataEntry {
  /** Type name as stored: "uint32", "float32", "string", "array", ... */
  readonly type: string;
  readonly value: GgufValue;
}

/** One tensor's description from the header. */
export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: `shape[0]` varies fastest. */
  readonly shape: readonly number[];
  /** ggml type number. */
  readonly type: number;
  /** ggml type name ("F16", "Q4_K", ...), or undefined for a type this llama.cpp does not know. */
  readonly typeName: string | undefined;
  /** Offset from the start of the data section, as stored. */
  readonly offset: number;
  /** Absolute offset of the data in the file. */
  readonly fileOffset: number;
  /** Number of elements. */
  readonly elements: number;
  /** Bytes of data, or undefined when the type is unknown or the row size is not a whole number of blocks. */
  readonly byteSize: number | undefined;
}

/** The raw contents of a GGUF header. */
export interface GgufHeader {
  readonly version: number;
  readonly fileSize: number;
  readonly metadata: ReadonlyMap<string, GgufMetadataEntry>;
  readonly tensors: readonly GgufTensorInfo[];
  /** Data alignment in effect (`general.alignment` or 32; 0 when the stored value is unusable). */
  readonly alignment: number;
  /** Absolute offset where tensor data starts. */
  readonly dataOffset: number;
  /** Problems found while reading that do not stop the reading (bad names, shapes, types). */
  readonly problems: readonly string[];
}

/** Bounds on what reading a header may cost. */
export interface GgufReadLimits {
  /** Most bytes of header (metadata and tensor infos) to read. Default 256 MiB. */
  readonly maxHeaderBytes?: number;
  /** Arrays up to this length keep their values (string arrays only for the token list). Default 4096. */
  readonly maxKeptArrayLength?: number;
}

/** The file is not a GGUF file llama.cpp can read, or its header is damaged. */
export class GgufFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GgufFormatError";
  }
}

/** String arrays whose values are kept whatever their length: the checker needs them. */
const KEPT_STRING_ARRAYS = new Set(["tokenizer.ggml.tokens"]);
const CHUNK_SIZE = 1 << 20;

/** Reads forward through a file with positional reads into a sliding buffer, never past a byte budget. */
class HeaderCursor {
  position = 0;
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;

  constructor(
    private readonly file: FileHandle,
    readonly fileSize: number,
    private readonly limit: number,
  ) {}

  /** Makes `size` bytes from the current position available, or explains why they are not. */
  async need(size: number, what: string): Promise<void> {
    const end = this.position + size;
    if (end > this.limit && this.limit < this.fileSize) {
      throw new GgufFormatError(`header is larger than the ${this.limit}-byte limit (reading ${what})`);
    }
    if (end > this.fileSize) {
      throw new GgufFormatError(`file is truncated: the header ends inside ${what} (needs byte ${end}, the file has ${this.fileSize})`);
    }
    if (this.position >= this.bufferStart && end <= this.bufferStart + this.buffer.length) return;
    const length = Math.min(Math.max(size, CHUNK_SIZE), this.fileSize - this.position);
    const buffer = Buffer.alloc(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.file.read(buffer, filled, length - filled, this.position + filled);
      if (bytesRead === 0) throw new GgufFormatError(`file is truncated: read stopped at byte ${this.position + filled}`);
      filled += bytesRead;
    }
    this.buffer = buffer;
    this.bufferStart = this.position;
  }

  /** Moves past `size` bytes without reading them. */
  async skip(size: number, what: string): Promise<void> {
    const end = this.position + size;
    if (end > this.limit && this.limit < this.fileSize) throw new GgufFormatError(`header is larger than the ${this.limit}-byte limit (reading ${what})`);
    if (end > this.fileSize) throw new GgufFormatError(`file is truncated: the header ends inside ${what} (needs byte ${end}, the file has ${this.fileSize})`);
    this.position = end;
  }

  private at(size: number): number {
    const offset = this.position - this.bufferStart;
    this.position += size;
    return offset;
  }
  u8(): number {
    return this.buffer.readUInt8(this.at(1));
  }
  i8(): number {
    return this.buffer.readInt8(this.at(1));
  }
  u16(): number {
    return this.buffer.readUInt16LE(this.at(2));
  }
  i16(): number {
    return this.buffer.readInt16LE(this.at(2));
  }
  u32(): number {
    return this.buffer.readUInt32LE(this.at(4));
  }
  i32(): number {
    return this.buffer.readInt32LE(this.at(4));
  }
  f32(): number {
    return this.buffer.readFloatLE(this.at(4));
  }
  f64(): number {
    return this.buffer.readDoubleLE(this.at(8));
  }
  u64(): bigint {
    return this.buffer.readBigUInt64LE(this.at(8));
  }
  i64(): bigint {
    return this.buffer.readBigInt64LE(this.at(8));
  }
  text(size: number): string {
    const offset = this.at(size);
    return this.buffer.toString("utf8", offset, offset + size);
  }
}

function toNumberIfSafe(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** A u64 count or size that must fit a JS number and the remaining budget. */
function count(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(`${what} is impossibly large (${value})`);
  return Number(value);
}

async function readString(cursor: HeaderCursor, what: string): Promise<string> {
  await cursor.need(8, what);
  const length = count(cursor.u64(), `length of ${what}`);
  await cursor.need(length, what);
  return cursor.text(length);
}

async function skipString(cursor: HeaderCursor, what: string): Promise<void> {
  await cursor.need(8, what);
  await cursor.skip(count(cursor.u64(), `length of ${what}`), what);
}

async function readScalar(cursor: HeaderCursor, type: number, what: string): Promise<GgufScalar> {
  if (type === GgufValueType.STRING) return readString(cursor, what);
  const size = GGUF_VALUE_TYPE_SIZES[type];
  if (size === undefined) throw new GgufFormatError(`${what} has unknown value type ${type}`);
  await cursor.need(size, what);
  switch (type) {
    case GgufValueType.UINT8:
      return cursor.u8();
    case GgufValueType.INT8:
      return cursor.i8();
    case GgufValueType.UINT16:
      return cursor.u16();
    case GgufValueType.INT16:
      return cursor.i16();
    case GgufValueType.UINT32:
      return cursor.u32();
    case GgufValueType.INT32:
      return cursor.i32();
    case GgufValueType.FLOAT32:
      return cursor.f32();
    case GgufValueType.FLOAT64:
      return cursor.f64();
    case GgufValueType.UINT64:
      return toNumberIfSafe(cursor.u64());
    case GgufValueType.INT64:
      return toNumberIfSafe(cursor.i64());
    default: {
      return cursor.u8() !== 0;
    }
  }
}

async function readValue(cursor: HeaderCursor, key: string, type: number, keptArrayLength: number): Promise<GgufValue> {
  if (type !== GgufValueType.ARRAY) return readScalar(cursor, type, `metadata '${key}'`);
  await cursor.need(12, `metadata '${key}'`);
  const elementType = cursor.u32();
  const length = count(cursor.u64(), `length of metadata array '${key}'`);
  const elementTypeName = GGUF_VALUE_TYPE_NAMES[elementType];
  if (elementType === GgufValueType.ARRAY) throw new GgufFormatError(`metadata '${key}' is an array of arrays, which llama.cpp does not read`);
  if (elementTypeName === undefined) throw new GgufFormatError(`metadata array '${key}' has unknown element type ${elementType}`);
  const elementSize = GGUF_VALUE_TYPE_SIZES[elementType];
  const keep = elementType === GgufValueType.STRING ? KEPT_STRING_ARRAYS.has(key) || length <= keptArrayLength : length <= keptArrayLength;
  // Bound the work before doing it: every element takes at least its size (8 bytes of length for strings).
  if (length * (elementSize ?? 8) > cursor.fileSize - cursor.position) {
    throw new GgufFormatError(`file is truncated: metadata array '${key}' claims ${length} elements, more than the rest of the file holds`);
  }
  if (!keep) {
    if (elementSize !== undefined) await cursor.skip(length * elementSize, `metadata array '${key}'`);
    else for (let index = 0; index < length; index++) await skipString(cursor, `metadata array '${key}'`);
    return { kind: "array", elementType: elementTypeName, length, values: undefined };
  }
  const values: GgufScalar[] = new Array(length);
  for (let index = 0; index < length; index++) values[index] = await readScalar(cursor, elementType, `metadata array '${key}'`);
  return { kind: "array", elementType: elementTypeName, length, values };
}

/**
 * Reads a GGUF file's header (metadata and tensor infos) the way llama.cpp's
 * `gguf_init` does, without reading tensor data. Throws
 * {@link GgufFormatError} when the header cannot be read at all; collects
 * what is wrong with individual tensor infos in `problems`.
 */
export async function readGgufHeader(path: string, limits: GgufReadLimits = {}): Promise<GgufHeader> {
  const file = await open(path, "r");
  try {
    const fileSize = (await file.stat()).size;
    const cursor = new HeaderCursor(file, fileSize, limits.maxHeaderBytes ?? 256 * 1024 * 1024);
    const keptArrayLength = limits.maxKeptArrayLength ?? 4096;
    if (fileSize < 24) throw new GgufFormatError(`not a GGUF file: only ${fileSize} bytes long`);
    await cursor.need(24, "the file header");
    const magic = cursor.u32();
    if (magic !== GGUF_MAGIC) {
      cursor.position = 0;
      const start = Array.from({ length: 4 }, () => cursor.u8().toString(16).padStart(2, "0")).join(" ");
      throw new GgufFormatError(`not a GGUF file: it starts with bytes ${start}, not "GGUF"`);
    }
    const version = cursor.u32();
    if (!GGUF_SUPPORTED_VERSIONS.includes(version)) {
      const swapped = version > 0xffff ? " (a big-endian file? llama.cpp reads little-endian GGUF only)" : "";
      throw new GgufFormatError(`unsupported GGUF version ${version}${swapped}; llama.cpp reads versions 2 and 3`);
    }
    const tensorCount = count(cursor.u64(), "tensor count");
    const metadataCount = count(cursor.u64(), "metadata count");
    // Each entry takes at least 13 bytes, each tensor info 32: refuse absurd counts before looping.
    if (metadataCount * 13 + tensorCount * 32 > fileSize - 24) {
      throw new GgufFormatError(`file is truncated or damaged: it claims ${metadataCount} metadata entries and ${tensorCount} tensors, more than its ${fileSize} bytes can hold`);
    }

    const metadata = new Map<string, GgufMetadataEntry>();
    const problems: string[] = [];
    for (let index = 0; index < metadataCount; index++) {
      const key = await readString(cursor, `metadata key #${index}`);
      await cursor.need(4, `metadata '${key}'`);
      const type = cursor.u32();
      const typeName = GGUF_VALUE_TYPE_NAMES[type];
      if (typeName === undefined) throw new GgufFormatError(`metadata '${key}' has unknown value type ${type}`);
      const value = await readValue(cursor, key, type, keptArrayLength);
      if (metadata.has(key)) problems.push(`metadata key '${key}' appears twice`);
      metadata.set(key, { type: typeName, value });
    }

    let alignment = 32;
    const alignmentEntry = metadata.get("general.alignment");
    if (alignmentEntry !== undefined) {
      const value = alignmentEntry.value;
      if (alignmentEntry.type !== "uint32" || typeof value !== "number" || value === 0 || (value & (value - 1)) !== 0) {
        problems.push(`general.alignment must be a uint32 power of two, got ${alignmentEntry.type} ${String(value)}`);
        alignment = 0;
      } else {
        alignment = value;
      }
    }

    const raw: Array<{ name: string; shape: number[]; type: number; offset: number }> = [];
    for (let index = 0; index < tensorCount; index++) {
      const name = await readString(cursor, `tensor info #${index}`);
      await cursor.need(4, `tensor info '${name}'`);
      const dimensions = cursor.u32();
      if (dimensions < 1 || dimensions > GGML_MAX_DIMS) throw new GgufFormatError(`tensor '${name}' has ${dimensions} dimensions; ggml allows 1 to ${GGML_MAX_DIMS}`);
      await cursor.need(dimensions * 8 + 12, `tensor info '${name}'`);
      const shape: number[] = [];
      for (let dimension = 0; dimension < dimensions; dimension++) {
        const size = cursor.i64();
        if (size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(`tensor '${name}' has an impossible dimension ${size}`);
        shape.push(Number(size));
      }
      const type = cursor.u32();
      const offset = count(cursor.u64(), `offset of tensor '${name}'`);
      raw.push({ name, shape, type, offset });
    }
    const dataOffset = alignment > 0 ? Math.ceil(cursor.position / alignment) * alignment : cursor.position;

    const names = new Set<string>();
    const tensors: GgufTensorInfo[] = raw.map(({ name, shape, type, offset }) => {
      if (names.has(name)) problems.push(`tensor '${name}' appears twice`);
      names.add(name);
      if (Buffer.byteLength(name) >= GGML_MAX_NAME) problems.push(`tensor name '${name.slice(0, 80)}' is longer than ggml's ${GGML_MAX_NAME - 1}-byte limit`);
      const traits = GGML_TYPES.get(type);
      const elements = shape.reduce((product, size) => product * size, 1);
      if (!Number.isSafeInteger(elements)) problems.push(`tensor '${name}' has too many elements`);
      let byteSize: number | undefined;
      if (traits === undefined) {
        problems.push(`tensor '${name}' has tensor type ${type}, which this llama.cpp does not know`);
      } else if (shape[0]! % traits.blockSize !== 0) {
        problems.push(`tensor '${name}' has rows of ${shape[0]} elements, not a multiple of the ${traits.name} block size ${traits.blockSize}`);
      } else {
        byteSize = (elements / traits.blockSize) * traits.typeSize;
      }
      return { name, shape, type, typeName: traits?.name, offset, fileOffset: dataOffset + offset, elements, byteSize };
    });
    return { version, fileSize, metadata, tensors, alignment, dataOffset, problems };
  } finally {
    await file.close();
  }
}
