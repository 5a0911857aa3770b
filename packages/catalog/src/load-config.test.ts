import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig } from "./load-config.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "switchboard-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tiny = (id: string, extra: Record<string, unknown> = {}) => ({ id, backend: "llama", source: "generated:tiny", ...extra });

/** The problem lines of the ConfigError that parsing `data` throws. */
function problemsOf(data: unknown, env: Record<string, string | undefined> = {}): readonly string[] {
  try {
    parseConfig(data, { env, baseDir: dir });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("the built-in default config", () => {
  it("serves the generated test model and a real instruct model, the real one by default", async () => {
    const config = await loadConfig({ env: {} });
    expect(config.models.map((model) => [model.id, model.backend === "llama" ? model.source : model.model, model.aliases])).toEqual([
      ["switchboard-test-tiny", "generated:tiny", ["test"]],
      ["qwen2.5-0.5b-instruct", "hf:bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", ["default"]],
    ]);
    expect(config.defaultModel).toBe("qwen2.5-0.5b-instruct");
    expect(config.models[0]!.description).toMatch(/random-weight.*gibberish/i);
    expect(config.configPath).toBeUndefined();
  });

  it("applies every default", async () => {
    const config = await loadConfig({ env: {} });
    expect(config.server).toEqual({
      host: "0.0.0.0",
      port: 8080,
      bodyLimitBytes: 4 * 1024 * 1024,
      corsOrigins: [],
      metricsRequireKey: false,
      logLevel: "info",
    });
    expect(config.apiKeys).toEqual([]);
    expect(config.modelsDir).toBe(path.join(homedir(), ".cache/switchboard/models"));
    const qwen = config.models[1]!;
    expect(qwen).toMatchObject({
      contextSize: 4096,
      sequences: 4,
      threads: 1,
      maxWaiting: 16,
      defaultMaxTokens: 256,
      maxTokens: 2048,
      sampling: {},
      embeddings: true,
    });
  });

  it("is deeply frozen", async () => {
    const config = await loadConfig({ env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(Object.isFrozen(config.models)).toBe(true);
    expect(Object.isFrozen(config.models[0]!.aliases)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
  });
});

describe("config files", () => {
  it("reads YAML, resolving relative paths against the file's folder and ~ against the home folder", async () => {
    const file = path.join(dir, "switchboard.yaml");
    await writeFile(
      file,
      [
        "# yaml-language-server: $schema=./config.schema.json",
        "server:",
        "  port: 9001",
        "  corsOrigins: ['https://app.example.com']",
        "apiKeys: [sk-one, sk-two]",
        "modelsDir: ./models",
        "models:",
        "  - id: local",
        "    backend: llama",
        "    source: ./weights/local.gguf",
        "    sampling: { temperature: 0.7, topK: 40 }",
        "  - id: home",
        "    backend: llama",
        "    source: ~/m.gguf",
        "    contextSize: 1024",
        "",
      ].join("\n"),
    );
    const config = await loadConfig({ path: file, env: {} });
    expect(config.configPath).toBe(file);
    expect(config.server.port).toBe(9001);
    expect(config.server.corsOrigins).toEqual(["https://app.example.com"]);
    expect(config.apiKeys).toEqual(["sk-one", "sk-two"]);
    expect(config.modelsDir).toBe(path.join(dir, "models"));
    expect(config.models[0]).toMatchObject({ source: path.join(dir, "weights/local.gguf"), sampling: { temperature: 0.7, topK: 40 } });
    expect(config.models[1]).toMatchObject({ source: path.join(homedir(), "m.gguf") });
    // No defaultModel and no `default` alias: the first model.
    expect(config.defaultModel).toBe("local");
    // maxTokens defaults to 2048 but never above the context; defaultMaxTokens stays 256.
    expect(config.models[1]).toMatchObject({ contextSize: 1024, maxTokens: 1024, defaultMaxTokens: 256 });
  });

  it("reads JSON (with an editor's $schema key)", async () => {
    const file = path.join(dir, "switchboard.json");
    await writeFile(
      file,
      JSON.stringify({ $schema: "./config.schema.json", defaultModel: "t", models: [tiny("a"), tiny("b", { aliases: ["t"] })] }),
    );
    const config = await loadConfig({ path: file, env: {} });
    expect(config.defaultModel).toBe("b");
    expect(config.models.map((model) => model.id)).toEqual(["a", "b"]);
  });

  it("uses SWITCHBOARD_CONFIG when no path is passed, and a passed path over it", async () => {
    const first = path.join(dir, "first.yaml");
    const second = path.join(dir, "second.yaml");
    await writeFile(first, "models: [{id: first, backend: llama, source: 'generated:tiny'}]\n");
    await writeFile(second, "models: [{id: second, backend: llama, source: 'generated:tiny'}]\n");
    expect((await loadConfig({ env: { SWITCHBOARD_CONFIG: first } })).defaultModel).toBe("first");
    expect((await loadConfig({ path: second, env: { SWITCHBOARD_CONFIG: first } })).defaultModel).toBe("second");
  });

  it("keeps the built-in models when a file leaves `models` out", async () => {
    const file = path.join(dir, "server-only.yml");
    await writeFile(file, "server:\n  port: 7000\n");
    const config = await loadConfig({ path: file, env: {} });
    expect(config.server.port).toBe(7000);
    expect(config.models.map((model) => model.id)).toEqual(["switchboard-test-tiny", "qwen2.5-0.5b-instruct"]);
    expect(config.defaultModel).toBe("qwen2.5-0.5b-instruct");
  });

  it("reports a missing file by path", async () => {
    const file = path.join(dir, "missing.yaml");
    await expect(loadConfig({ path: file, env: {} })).rejects.toThrow(`Invalid configuration (${file}), 1 problem:\n  - cannot read the config file: no such file`);
  });

  it("reports YAML syntax errors with their line", async () => {
    const file = path.join(dir, "broken.yaml");
    await writeFile(file, "server:\n  port: 8080\n  port: 9090\nmodels: [\n");
    const error = (await loadConfig({ path: file, env: {} }).catch((caught: unknown) => caught)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems.join("\n")).toMatch(/not valid YAML at line 3.*unique/i);
  });

  it("reports JSON syntax errors with their line", async () => {
    const file = path.join(dir, "broken.json");
    await writeFile(file, '{\n  "server": {\n    "port": 8080,\n  }\n}\n');
    const error = (await loadConfig({ path: file, env: {} }).catch((caught: unknown) => caught)) as ConfigError;
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^not valid JSON: .* at line 4, column 3$/);
  });
});

describe("environment overrides", () => {
  const file = { apiKeys: ["from-file"], server: { host: "127.0.0.1", port: 1234, logLevel: "warn" }, modelsDir: "./m", models: [tiny("a")] };

  it("PORT, HOST, LOG_LEVEL, SWITCHBOARD_API_KEYS and SWITCHBOARD_MODELS_DIR override the file", () => {
    const config = parseConfig(file, {
      baseDir: dir,
      env: { PORT: "9999", HOST: "::", LOG_LEVEL: "DEBUG", SWITCHBOARD_API_KEYS: " k1 , ,k2,, ", SWITCHBOARD_MODELS_DIR: "/srv/models" },
    });
    expect(config.server).toMatchObject({ port: 9999, host: "::", logLevel: "debug" });
    expect(config.apiKeys).toEqual(["k1", "k2"]);
    expect(config.modelsDir).toBe("/srv/models");
  });

  it("resolves a relative SWITCHBOARD_MODELS_DIR against the working directory, the file's against the file", () => {
    expect(parseConfig(file, { baseDir: dir, env: { SWITCHBOARD_MODELS_DIR: "rel" } }).modelsDir).toBe(path.resolve("rel"));
    expect(parseConfig(file, { baseDir: dir, env: {} }).modelsDir).toBe(path.join(dir, "m"));
  });

  it("treats empty variables as unset, so a blank key list never opens the API", () => {
    const config = parseConfig(file, { baseDir: dir, env: { SWITCHBOARD_API_KEYS: " , ", PORT: "", HOST: "" } });
    expect(config.apiKeys).toEqual(["from-file"]);
    expect(config.server).toMatchObject({ port: 1234, host: "127.0.0.1" });
  });

  it("names the variable in problems it causes", () => {
    expect(problemsOf(file, { PORT: "eighty", LOG_LEVEL: "loud" })).toEqual([
      'PORT: must be a port number from 0 to 65535 (got "eighty")',
      'server.logLevel (from LOG_LEVEL): must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    ]);
    expect(problemsOf(file, { PORT: "70000" })).toEqual(["server.port (from PORT): must be <= 65535"]);
  });
});

describe("validation", () => {
  it("rejects unknown keys at every level, suggesting the likely key", () => {
    const problems = problemsOf({
      sever: {},
      server: { prot: 1 },
      models: [tiny("a", { contextsize: 512, sampling: { temprature: 1 } })],
    });
    expect(problems).toEqual([
      expect.stringMatching(/^server\.prot: unknown key \(did you mean 'port'\?\); allowed: host, port,/),
      expect.stringMatching(/^models\[0\]\.contextsize: unknown key \(did you mean 'contextSize'\?\)/),
      expect.stringMatching(/^models\[0\]\.sampling\.temprature: unknown key \(did you mean 'temperature'\?\)/),
      expect.stringMatching(/^sever: unknown key \(did you mean 'server'\?\)/),
    ]);
  });

  it("checks types and ranges", () => {
    expect(
      problemsOf({
        server: { port: "80", bodyLimitBytes: 10 },
        apiKeys: "secret",
        models: [tiny("a", { contextSize: 32, sequences: 0, threads: 1.5, sampling: { topP: 0 }, embeddings: "yes" })],
      }),
    ).toEqual([
      "server.port: must be integer",
      "server.bodyLimitBytes: must be >= 1024",
      "apiKeys: must be a list",
      "models[0].contextSize: must be >= 64",
      "models[0].sequences: must be >= 1",
      "models[0].threads: must be integer",
      "models[0].sampling.topP: must be > 0",
      "models[0].embeddings: must be boolean",
    ]);
  });

  it("requires id, backend and source, and a known backend", () => {
    expect(problemsOf({ models: [{ backend: "llama" }, { id: "b", source: "x" }, { id: "c", backend: "vllm", source: "x" }, "d"] })).toEqual([
      "models[0].id: required",
      "models[0].source: required",
      'models[1].backend: required (one of "llama", "hf")',
      'models[2].backend: must be one of "llama", "hf"',
      "models[3]: must be a mapping (object)",
    ]);
  });

  it("rejects an empty model list", () => {
    expect(problemsOf({ models: [] })).toEqual(["models: must NOT have fewer than 1 items"]);
  });

  it("rejects model ids and aliases that are not plain names", () => {
    expect(problemsOf({ models: [tiny("../etc/passwd"), tiny("ok", { aliases: ["has space", "x".repeat(129), "fine/name:q4"] })] })).toEqual([
      'models[0].id: "../etc/passwd" is not a valid model name: it must start with a letter or digit and contain only letters, digits and . _ : / - (at most 128 characters)',
      expect.stringMatching(/^models\[1\]\.aliases\[0\]: "has space" is not a valid model name/),
      expect.stringMatching(/^models\[1\]\.aliases\[1\]: "x{129}" is not a valid model name/),
    ]);
  });

  it("rejects duplicate ids and aliases across models", () => {
    expect(problemsOf({ models: [tiny("x"), tiny("y", { aliases: ["z"] }), tiny("x"), tiny("w", { aliases: ["z", "y"] })] })).toEqual([
      "models[0].id: duplicate id 'x' (also models[2])",
      "models[1].id: duplicate id 'y' (also models[3].aliases[1])",
      "models[1].aliases[0]: duplicate alias 'z' (also models[3].aliases[0])",
    ]);
  });

  it("requires defaultModel to name a model or alias, and stores the model's id", () => {
    expect(problemsOf({ defaultModel: "nope", models: [tiny("a", { aliases: ["b"] })] })).toEqual([
      "defaultModel: 'nope' is not the id or alias of any model (known: 'a', 'b')",
    ]);
    expect(parseConfig({ defaultModel: "b", models: [tiny("z"), tiny("a", { aliases: ["b"] })] }, { env: {}, baseDir: dir }).defaultModel).toBe("a");
  });

  it("reserves `default` for the default model", () => {
    expect(problemsOf({ defaultModel: "a", models: [tiny("a"), tiny("b", { aliases: ["default"] })] })).toEqual([
      "models[1].aliases[0]: 'default' is reserved for defaultModel ('a')",
    ]);
    expect(problemsOf({ models: [tiny("default")] })).toEqual(["models[0].id: 'default' is reserved: it always names defaultModel"]);
    // Without defaultModel, the model that carries the alias is the default.
    expect(parseConfig({ models: [tiny("a"), tiny("b", { aliases: ["default"] })] }, { env: {}, baseDir: dir }).defaultModel).toBe("b");
  });

  it("keeps maxTokens <= contextSize and defaultMaxTokens <= maxTokens", () => {
    expect(
      problemsOf({
        models: [
          tiny("a", { contextSize: 512, maxTokens: 1024 }),
          tiny("b", { maxTokens: 100, defaultMaxTokens: 200 }),
          tiny("c", { defaultMaxTokens: 4000 }),
        ],
      }),
    ).toEqual([
      "models[0].maxTokens: must be <= contextSize (512)",
      "models[1].defaultMaxTokens: must be <= maxTokens (100)",
      "models[2].defaultMaxTokens: must be <= maxTokens (2048)",
    ]);
    const config = parseConfig({ models: [tiny("a", { contextSize: 128 })] }, { env: {}, baseDir: dir });
    expect(config.models[0]).toMatchObject({ contextSize: 128, maxTokens: 128, defaultMaxTokens: 128 });
  });

  it("checks sources it can check without touching the disk or network", () => {
    expect(problemsOf({ models: [tiny("a", { source: "generated:huge" }), tiny("b", { source: "https://" }), tiny("c", { source: "" })] })).toEqual([
      "models[0].source: unknown generated model 'huge' (expected generated:tiny or generated:25m)",
      'models[1].source: not a valid URL: "https://"',
      "models[2].source: must NOT have fewer than 1 characters",
    ]);
  });

  it("reports every problem at once, schema and semantic alike, in file order", () => {
    let error: unknown;
    try {
      parseConfig(
        {
          server: { port: -1 },
          defaultModel: "missing",
          models: [tiny("x"), tiny("y", { contextSize: 10 }), tiny("x", { maxTokens: 9000 })],
        },
        { env: {}, baseDir: dir, origin: "test.yaml" },
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      [
        "Invalid configuration (test.yaml), 5 problems:",
        "  - server.port: must be >= 0",
        "  - defaultModel: 'missing' is not the id or alias of any model (known: 'x', 'y')",
        "  - models[0].id: duplicate id 'x' (also models[2])",
        "  - models[1].contextSize: must be >= 64",
        "  - models[2].maxTokens: must be <= contextSize (4096)",
      ].join("\n"),
    );
  });

  it("never echoes API keys in problems", () => {
    const problems = problemsOf({ apiKeys: ["sk-very-secret", ""], models: [tiny("a")] }, { SWITCHBOARD_API_KEYS: undefined });
    expect(problems).toEqual(["apiKeys[1]: must NOT have fewer than 1 characters"]);
    expect(problems.join("\n")).not.toContain("sk-very-secret");
  });
});

describe("the router section", () => {
  const chatModel = { id: "chat", backend: "hf", model: "acme/chat", task: "conversational" };
  const captioner = { id: "captioner", backend: "hf", model: "acme/cap", task: "image-to-text" };

  it("defaults every role to the default model, with the alias hugginggpt", () => {
    const config = parseConfig({ defaultModel: "b", models: [tiny("a"), tiny("b")] }, { env: {}, baseDir: dir });
    expect(config.router).toEqual({
      enabled: true,
      aliases: ["hugginggpt"],
      planner: "b",
      selector: "b",
      responder: "b",
      maxTasks: 8,
      topK: 5,
      deadlineMs: 120_000,
      maxReplans: 2,
      concurrency: 16,
      runTtlSeconds: 3600,
    });
  });

  it("resolves role aliases to catalog ids; the selector and responder follow the planner", () => {
    const config = parseConfig({ models: [tiny("a", { aliases: ["small"] }), chatModel], router: { planner: "small", responder: "chat", maxTasks: 3 } }, { env: {}, baseDir: dir });
    expect(config.router).toMatchObject({ planner: "a", selector: "a", responder: "chat", maxTasks: 3 });
  });

  it("names roles that are unknown or not chat models, and models that take the router's names", () => {
    expect(problemsOf({ models: [tiny("router"), tiny("a"), captioner], router: { planner: "nope", selector: "captioner", aliases: ["a"] } })).toEqual([
      "models[0].id: 'router' is the router's name; rename the model, or set router.enabled: false",
      "models[1].id: 'a' is the router's name (router.aliases); rename the model, or set router.enabled: false",
      expect.stringMatching(/^router\.planner: 'nope' is not the id or alias of any model \(known: /),
      "router.selector: 'captioner' is not a chat model: use a local (llama) model or a remote conversational or text-generation model",
    ]);
  });

  it("plans with the first chat model when the default model is a specialist, and is off when nothing can chat", () => {
    expect(parseConfig({ models: [captioner, tiny("a")] }, { env: {}, baseDir: dir }).router).toMatchObject({ enabled: true, planner: "a" });
    expect(parseConfig({ models: [captioner] }, { env: {}, baseDir: dir }).router.enabled).toBe(false);
    expect(problemsOf({ models: [captioner], router: { enabled: true } })).toEqual([
      "router.enabled: the router needs a chat model to plan with, and the catalog has none: add a local (llama) model or a remote conversational model",
    ]);
  });
});
