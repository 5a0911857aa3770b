import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGgufHeader } from "./gguf-reader.js";
import { float32ToFloat16Bits, gguf, writeGgufFile } from "./gguf-writer.js";

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "switchboard-gguf-writer-"));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("float32ToFloat16Bits", () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [65504, 0x7bff],
    [65520, 0x7c00], // rounds up to infinity
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -14, 0x0400], // smallest normal
    [1e-8, 0x0000], // underflows
    [1 + 2 ** -11, 0x3c00], // a tie rounds to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // a tie rounds to even (up)
    [-0, 0x8000],
  ])("converts %d to half-precision bits %i", (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
  });

  it("keeps NaN a NaN", () => {
    const bits = float32ToFloat16Bits(Number.NaN);
    expect(bits & 0x7c00).toBe(0x7c00);
    expect(bits & 0x3ff).not.toBe(0);
  });
});

describe("writeGgufFile", () => {
  it("writes metadata of every type and aligned tensor data that read back unchanged", async () => {
    const path = join(directory, "roundtrip.gguf");
    const matrix = Float32Array.from({ length: 6 * 3 }, (_, index) => index / 4);
    const written = await writeGgufFile(path, {
      metadata: [
        ["general.architecture", gguf.string("llama")],
        ["test.u8", gguf.u8(200)],
        ["test.i8", gguf.i8(-100)],
        ["test.u16", gguf.u16(60000)],
        ["test.i16", gguf.i16(-30000)],
        ["test.u32", gguf.u32(4_000_000_000)],
        ["test.i32", gguf.i32(-2_000_000_000)],
        ["test.u64", gguf.u64(2n ** 60n)],
        ["test.i64", gguf.i64(-5)],
        ["test.f32", gguf.f32(0.5)],
        ["test.f64", gguf.f64(Math.PI)],
        ["test.bool", gguf.bool(true)],
        ["test.unicode", gguf.string("h\u00e9llo \u4e16\u754c")],
        ["test.strings", gguf.strings(["a", "", "<0x0A>"])],
        ["test.ints", gguf.i32s([1, -2, 3])],
        ["test.floats", gguf.f32s([0.25, -1])],
      ],
      tensors: [
        { name: "a", shape: [5], type: "f32", data: Float32Array.of(1, 2, 3, 4, 5) },
        { name: "b", shape: [6, 3], type: "f16", data: matrix },
        { name: "c", shape: [2, 2, 2], type: "f32", data: () => new Float32Array(8).fill(7) },
      ],
    });

    const bytes = await readFile(path);
    expect(written.bytes).toBe(bytes.length);
    const header = await readGgufHeader(path);
    expect(header.version).toBe(3);
    expect(header.problems).toEqual([]);
    const value = (key: string) => header.metadata.get(key)?.value;
    expect(value("test.u8")).toBe(200);
    expect(value("test.i8")).toBe(-100);
    expect(value("test.u16")).toBe(60000);
    expect(value("test.i16")).toBe(-30000);
    expect(value("test.u32")).toBe(4_000_000_000);
    expect(value("test.i32")).toBe(-2_000_000_000);
    expect(value("test.u64")).toBe(2n ** 60n);
    expect(value("test.i64")).toBe(-5);
    expect(value("test.f32")).toBe(0.5);
    expect(value("test.f64")).toBe(Math.PI);
    expect(value("test.bool")).toBe(true);
    expect(value("test.unicode")).toBe("h\u00e9llo \u4e16\u754c");
    expect(value("test.strings")).toMatchObject({ kind: "array", elementType: "string", length: 3, values: ["a", "", "<0x0A>"] });
    expect(value("test.ints")).toMatchObject({ elementType: "int32", values: [1, -2, 3] });
    expect(value("test.floats")).toMatchObject({ elementType: "float32", values: [0.25, -1] });
    expect(header.metadata.get("test.u32")?.type).toBe("uint32");

    expect(header.dataOffset % 32).toBe(0);
    expect(header.tensors.map((tensor) => [tensor.name, tensor.typeName, tensor.shape, tensor.offset % 32])).toEqual([
      ["a", "F32", [5], 0],
      ["b", "F16", [6, 3], 0],
      ["c", "F32", [2, 2, 2], 0],
    ]);
    const [a, b, c] = header.tensors;
    expect(bytes.readFloatLE(a!.fileOffset + 4 * 4)).toBe(5);
    // 17/4 = 4.25 is exact in f16: 0x4440.
    expect(bytes.readUInt16LE(b!.fileOffset + 17 * 2)).toBe(0x4440);
    expect(bytes.readFloatLE(c!.fileOffset + 7 * 4)).toBe(7);
    expect(bytes.length % 32).toBe(0);
  });

  it("refuses tensors whose data does not fill their shape, and duplicate names", async () => {
    const path = join(directory, "bad.gguf");
    await expect(writeGgufFile(path, { metadata: [], tensors: [{ name: "a", shape: [4, 2], type: "f32", data: new Float32Array(7) }] })).rejects.toThrow(
      /'a' has 7 values, its shape needs 8/,
    );
    const tensor = { name: "a", shape: [1], type: "f32", data: new Float32Array(1) } as const;
    await expect(writeGgufFile(path, { metadata: [], tensors: [tensor, tensor] })).rejects.toThrow(/written twice/);
  });
});
