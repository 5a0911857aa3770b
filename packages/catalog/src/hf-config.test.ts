import { describe, expect, it } from "vitest";
import { Catalog, modelsForTask, servesTask } from "./catalog.js";
import { ConfigError, parseConfig } from "./load-config.js";
import type { HfModelConfig } from "./types.js";

const remote = (id: string, extra: Record<string, unknown> = {}) => ({ id, backend: "hf", model: `acme/${id}`, task: "text-to-image", ...extra });

function problemsOf(data: unknown, env: Record<string, string | undefined> = {}): readonly string[] {
  try {
    parseConfig(data, { env, baseDir: "/srv/switchboard" });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("remote (backend: hf) models", () => {
  it("resolve with their defaults: timeout, the task's modalities, the hf-inference provider left implicit", () => {
    const config = parseConfig({ models: [remote("painter")] }, { env: {}, baseDir: "/" });
    expect(config.models[0]).toEqual({
      id: "painter",
      aliases: [],
      backend: "hf",
      model: "acme/painter",
      task: "text-to-image",
      timeoutMs: 60_000,
      modalities: { in: ["text"], out: ["image"] },
    });
  });

  it("keep every field the file sets", () => {
    const entry = remote("listener", {
      task: "automatic-speech-recognition",
      endpointUrl: "https://abc.endpoints.huggingface.cloud",
      sendToken: false,
      description: "Whisper on an endpoint",
      downloads: 42,
      likes: 7,
      timeoutMs: 9000,
      aliases: ["whisper-1"],
      modalities: { in: ["audio"], out: ["text"] },
    });
    const model = parseConfig({ models: [entry] }, { env: {}, baseDir: "/" }).models[0] as HfModelConfig;
    expect(model).toEqual({ ...entry, backend: "hf" });
  });

  it("are checked by name: provider xor endpointUrl, chat-only providers, task names, URLs", () => {
    expect(
      problemsOf({
        models: [
          remote("a", { provider: "hf-inference", endpointUrl: "https://x.example" }),
          remote("b", { provider: "together" }),
          remote("c", { task: "image-editing" }),
          remote("d", { endpointUrl: "ftp://x" }),
          remote("e", { model: "not a repo id" }),
          remote("f", { provider: "together", task: "conversational" }),
          remote("g", { source: "generated:tiny" }),
        ],
        huggingface: { baseUrl: "http://", retries: -1 },
      }),
    ).toEqual([
      "models[0].endpointUrl: set provider or endpointUrl, not both",
      "models[1].provider: 'together' can serve conversational models only; use 'hf-inference' or an endpointUrl for text-to-image",
      expect.stringMatching(/^models\[2\]\.task: must be one of "token-classification", .*"feature-extraction"$/),
      'models[3].endpointUrl: must match pattern "^https?://"',
      expect.stringMatching(/^models\[4\]\.model: must match pattern/),
      expect.stringMatching(/^models\[6\]\.source: unknown key; allowed: id, aliases, backend, model, task/),
      "huggingface.retries: must be >= 0",
      'huggingface.baseUrl: not a valid URL: "http://"',
    ]);
  });

  it("share ids and aliases with local models: duplicates are refused across backends", () => {
    expect(problemsOf({ models: [{ id: "x", backend: "llama", source: "generated:tiny" }, remote("x")] })).toEqual(["models[0].id: duplicate id 'x' (also models[1])"]);
  });
});

describe("the huggingface and artifacts sections", () => {
  it("default everything", () => {
    const config = parseConfig({ models: [remote("painter")] }, { env: {}, baseDir: "/" });
    expect(config.huggingface).toEqual({
      baseUrl: "https://router.huggingface.co",
      hubUrl: "https://huggingface.co",
      retries: 2,
      backoffBaseMs: 200,
      backoffMaxMs: 5000,
      maxResponseBytes: 32 * 1024 * 1024,
      circuitFailureThreshold: 5,
      circuitCoolDownMs: 30_000,
      userUrls: { allowList: [], maxBytes: 20 * 1024 * 1024, timeoutMs: 10_000 },
    });
    expect(config.artifacts).toEqual({ ttlSeconds: 3600, maxBytes: 32 * 1024 * 1024, maxTotalBytes: 512 * 1024 * 1024, urlTtlSeconds: 3600 });
  });

  it("resolve a relative artifacts folder against the config file's folder and trim the public base URL", () => {
    const config = parseConfig(
      { models: [remote("painter")], artifacts: { dir: "artifacts", publicBaseUrl: "https://api.example.com/", redisUrl: "redis://cache:6379" } },
      { env: {}, baseDir: "/srv/switchboard" },
    );
    expect(config.artifacts).toMatchObject({ dir: "/srv/switchboard/artifacts", publicBaseUrl: "https://api.example.com", redisUrl: "redis://cache:6379" });
  });

  it("take HF_TOKEN and SWITCHBOARD_ARTIFACT_SECRET from the environment over the file", () => {
    const file = { models: [remote("painter")], huggingface: { token: "hf_fileTokenValue1234" }, artifacts: { secret: "file secret of sixteen+ bytes" } };
    const config = parseConfig(file, { env: { HF_TOKEN: " hf_envTokenValue5678 ", SWITCHBOARD_ARTIFACT_SECRET: "env secret of sixteen+ bytes" }, baseDir: "/" });
    expect(config.huggingface.token).toBe("hf_envTokenValue5678");
    expect(config.artifacts.secret).toBe("env secret of sixteen+ bytes");
    expect(parseConfig(file, { env: { HF_TOKEN: "" }, baseDir: "/" }).huggingface.token).toBe("hf_fileTokenValue1234");
  });

  it("never echo the token or the artifact key in problems", () => {
    const problems = problemsOf(
      { models: [remote("painter")], huggingface: { token: "hf_secretTokenValue99", tokn: "hf_secretTokenValue99" }, artifacts: { secret: "short" } },
      { SWITCHBOARD_ARTIFACT_SECRET: "tiny" },
    );
    expect(problems).toEqual([
      expect.stringMatching(/^huggingface\.tokn: unknown key \(did you mean 'token'\?\)/),
      "artifacts.secret (from SWITCHBOARD_ARTIFACT_SECRET): must NOT have fewer than 16 characters",
    ]);
    expect(problems.join("\n")).not.toContain("hf_secretTokenValue99");
    expect(problems.join("\n")).not.toContain("tiny");
  });
});

describe("task lookups", () => {
  const config = parseConfig(
    {
      models: [
        { id: "local", backend: "llama", source: "generated:tiny" },
        remote("small", { downloads: 10 }),
        remote("popular", { downloads: 5000 }),
        remote("liked", { downloads: 10, likes: 3 }),
        remote("chat", { task: "conversational" }),
        remote("tgi", { task: "text-generation", endpointUrl: "http://tgi:8080" }),
        remote("routed", { task: "text-generation" }),
        remote("st", { task: "sentence-similarity" }),
      ],
    },
    { env: {}, baseDir: "/" },
  );
  const catalog = new Catalog(config);

  it("rank a task's models by downloads, then likes, then file order", () => {
    expect(modelsForTask(catalog.list(), "text-to-image").map((model) => model.id)).toEqual(["popular", "liked", "small"]);
    expect(modelsForTask(catalog.list(), "depth-estimation")).toEqual([]);
  });

  it("know which models serve which task", () => {
    const serves = (id: string, task: Parameters<typeof servesTask>[1]) => servesTask(catalog.resolve(id)!, task);
    expect(serves("chat", "conversational")).toBe(true);
    expect(serves("tgi", "conversational")).toBe(true);
    // Through a provider the Hub's task mapping decides.
    expect(serves("routed", "conversational")).toBe(false);
    expect(serves("st", "feature-extraction")).toBe(true);
    expect(serves("local", "conversational")).toBe(false);
    expect(serves("popular", "image-to-image")).toBe(false);
  });
});
