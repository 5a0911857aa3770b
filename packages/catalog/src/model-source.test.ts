import { describe, expect, it } from "vitest";
import { parseModelSource } from "./model-source.js";

describe("parseModelSource", () => {
  it("recognises generated test models", () => {
    expect(parseModelSource("generated:tiny")).toEqual({ kind: "generated", spec: "tiny" });
    expect(parseModelSource("generated:25m")).toEqual({ kind: "generated", spec: "25m" });
    expect(() => parseModelSource("generated:huge")).toThrow(/unknown generated model 'huge'/);
  });

  it("treats node-llama-cpp URIs and URLs as remote", () => {
    for (const uri of ["hf:user/repo:Q4_K_M", "hf:user/repo/file.gguf", "huggingface:user/repo", "hf.co/user/repo", "https://example.com/m.gguf", "HTTP://example.com/m.gguf"]) {
      expect(parseModelSource(uri)).toEqual({ kind: "remote", uri });
    }
  });

  it("treats everything else as a file path", () => {
    expect(parseModelSource("./models/m.gguf")).toEqual({ kind: "file", path: "./models/m.gguf" });
    expect(parseModelSource("/abs/m.gguf")).toEqual({ kind: "file", path: "/abs/m.gguf" });
  });
});
