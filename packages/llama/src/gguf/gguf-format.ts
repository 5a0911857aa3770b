/**
 * Constants of the GGUF container format shared by the writer and the checker.
 * Source of truth: ggml's `gguf.h`/`gguf.cpp` and `ggml.c` type traits, as
 * built into node-llama-cpp 3.21.1 (the block and type sizes below were read
 * back from its binding).
 */

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** llama.cpp reads versions 2 and 3; it writes 3. */
export const GGUF_SUPPORTED_VERSIONS: readonly number[] = [2, 3];
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGML_MAX_DIMS = 4;
/** ggml's GGML_MAX_NAME: names must be shorter than this (the C string keeps a NUL). */
export const GGML_MAX_NAME = 64;

/** Metadata value types as numbered in the file. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** Byte size of each fixed-size metadata value type (strings and arrays are variable). */
export const GGUF_VALUE_TYPE_SIZES: Readonly<Record<number, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

export const GGUF_VALUE_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: "uint8",
  1: "int8",
  2: "uint16",
  3: "int16",
  4: "uint32",
  5: "int32",
  6: "float32",
  7: "bool",
  8: "string",
  9: "array",
  10: "uint64",
  11: "int64",
  12: "float64",
};

/** The tensor types this package writes. */
export const GgmlType = { F32: 0, F16: 1 } as const;

interface GgmlTypeTraits {
  readonly name: string;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

/**
 * Every tensor type ggml in node-llama-cpp 3.21.1 can load. Numbers 4, 5,
 * 31-33 and 36-38 were removed from ggml and are refused like unknown ones.
 */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeTraits> = new Map([
  [0, { name: "F32", blockSize: 1, typeSize: 4 }],
  [1, { name: "F16", blockSize: 1, typeSize: 2 }],
  [2, { name: "Q4_0", blockSize: 32, typeSize: 18 }],
  [3, { name: "Q4_1", blockSize: 32, typeSize: 20 }],
  [6, { name: "Q5_0", blockSize: 32, typeSize: 22 }],
  [7, { name: "Q5_1", blockSize: 32, typeSize: 24 }],
  [8, { name: "Q8_0", blockSize: 32, typeSize: 34 }],
  [9, { name: "Q8_1", blockSize: 32, typeSize: 36 }],
  [10, { name: "Q2_K", blockSize: 256, typeSize: 84 }],
  [11, { name: "Q3_K", blockSize: 256, typeSize: 110 }],
  [12, { name: "Q4_K", blockSize: 256, typeSize: 144 }],
  [13, { name: "Q5_K", blockSize: 256, typeSize: 176 }],
  [14, { name: "Q6_K", blockSize: 256, typeSize: 210 }],
  [15, { name: "Q8_K", blockSize: 256, typeSize: 292 }],
  [16, { name: "IQ2_XXS", blockSize: 256, typeSize: 66 }],
  [17, { name: "IQ2_XS", blockSize: 256, typeSize: 74 }],
  [18, { name: "IQ3_XXS", blockSize: 256, typeSize: 98 }],
  [19, { name: "IQ1_S", blockSize: 256, typeSize: 50 }],
  [20, { name: "IQ4_NL", blockSize: 32, typeSize: 18 }],
  [21, { name: "IQ3_S", blockSize: 256, typeSize: 110 }],
  [22, { name: "IQ2_S", blockSize: 256, typeSize: 82 }],
  [23, { name: "IQ4_XS", blockSize: 256, typeSize: 136 }],
  [24, { name: "I8", blockSize: 1, typeSize: 1 }],
  [25, { name: "I16", blockSize: 1, typeSize: 2 }],
  [26, { name: "I32", blockSize: 1, typeSize: 4 }],
  [27, { name: "I64", blockSize: 1, typeSize: 8 }],
  [28, { name: "F64", blockSize: 1, typeSize: 8 }],
  [29, { name: "IQ1_M", blockSize: 256, typeSize: 56 }],
  [30, { name: "BF16", blockSize: 1, typeSize: 2 }],
  [34, { name: "TQ1_0", blockSize: 256, typeSize: 54 }],
  [35, { name: "TQ2_0", blockSize: 256, typeSize: 66 }],
  [39, { name: "MXFP4", blockSize: 32, typeSize: 17 }],
  [40, { name: "NVFP4", blockSize: 64, typeSize: 36 }],
  [41, { name: "Q1_0", blockSize: 128, typeSize: 18 }],
  [42, { name: "Q2_0", blockSize: 64, typeSize: 18 }],
]);

/** Token types of `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`). */
export const GgufTokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** The text of the SentencePiece byte-fallback token for a byte, as llama.cpp looks it up (`<0x0A>`). */
export function byteTokenText(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
