/**
 * The configuration used when no file is given, and the model list used when
 * a file leaves `models` out.
 */
import type { ConfigFile, ModelFileEntry } from "./config-schema.js";

/** Id of the built-in random-weight test model: always available, never downloaded. */
export const TEST_MODEL_ID = "switchboard-test-tiny";

/** Id of the built-in real instruct model (needs a network on first start). */
export const DEFAULT_INSTRUCT_MODEL_ID = "qwen2.5-0.5b-instruct";

/**
 * The built-in models. The instruct model is Qwen2.5-0.5B-Instruct quantised
 * to Q4_K_M by bartowski (~398 MB): small enough for a CPU-only laptop, with a
 * chat template node-llama-cpp recognises. When it cannot be downloaded the
 * app may fall back to {@link TEST_MODEL_ID}.
 */
export const DEFAULT_MODELS: readonly ModelFileEntry[] = [
  {
    id: TEST_MODEL_ID,
    aliases: ["test"],
    backend: "llama",
    source: "generated:tiny",
    description:
      "Random-weight test model generated on this machine: it runs every feature fast but produces gibberish. For tests and demos without a network.",
    contextSize: 2048,
  },
  {
    id: DEFAULT_INSTRUCT_MODEL_ID,
    aliases: ["default"],
    backend: "llama",
    source: "hf:bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M",
    description: "Qwen2.5 0.5B Instruct (Q4_K_M GGUF, ~400 MB), downloaded from Hugging Face on first start.",
  },
];

/** The whole default configuration file: built-in models, every other key at its default. */
export const DEFAULT_CONFIG_FILE: ConfigFile = {
  defaultModel: DEFAULT_INSTRUCT_MODEL_ID,
  models: [...DEFAULT_MODELS],
};
