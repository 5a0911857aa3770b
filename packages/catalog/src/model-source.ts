/**
 * What a model's `source` string means. The config resolves file paths with
 * it; the llama engine uses it to decide how to obtain the GGUF.
 */

/** The project's random-weight test models (see packages/llama/src/gguf). */
export const GENERATED_MODEL_SPECS = ["tiny", "25m"] as const;
export type GeneratedModelSpec = (typeof GENERATED_MODEL_SPECS)[number];

export type ModelSource =
  /** `generated:tiny` / `generated:25m`: made on the machine, never downloaded. */
  | { kind: "generated"; spec: GeneratedModelSpec }
  /** A node-llama-cpp model URI or URL, downloaded once into the models folder. */
  | { kind: "remote"; uri: string }
  /** A GGUF file on disk. */
  | { kind: "file"; path: string };

/** The URI prefixes node-llama-cpp 3.21's `parseModelUri` treats as Hugging Face. */
const HUGGING_FACE_PREFIXES = ["hf:", "huggingface:", "hf.co/", "huggingface.co/"];

/**
 * Classifies a source string. Throws for a `generated:` spec that does not
 * exist; anything that is neither generated nor remote is a file path
 * (resolved by the caller).
 */
export function parseModelSource(source: string): ModelSource {
  if (source.startsWith("generated:")) {
    const spec = source.slice("generated:".length);
    if (!(GENERATED_MODEL_SPECS as readonly string[]).includes(spec)) {
      throw new Error(`unknown generated model '${spec}' (expected ${GENERATED_MODEL_SPECS.map((name) => `generated:${name}`).join(" or ")})`);
    }
    return { kind: "generated", spec: spec as GeneratedModelSpec };
  }
  // Same tests, same case rules as node-llama-cpp: URL schemes ignore case, `hf:` does not.
  const lower = source.toLowerCase();
  if (lower.startsWith("https://") || lower.startsWith("http://") || HUGGING_FACE_PREFIXES.some((prefix) => source.startsWith(prefix))) {
    return { kind: "remote", uri: source };
  }
  return { kind: "file", path: source };
}
