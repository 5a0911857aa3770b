/**
 * Loads, validates and resolves the configuration: file (YAML or JSON) →
 * environment overrides → JSON Schema validation → semantic checks →
 * defaults → one deep-frozen {@link SwitchboardConfig}. Every problem found is
 * reported at once, by name, in a single {@link ConfigError}.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import * as path from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import addFormatsModule from "ajv-formats";
import { parseDocument } from "yaml";
import { TASK_MODALITIES } from "@switchboard/protocol";
import {
  ARTIFACT_DEFAULTS,
  CONFIG_DEFAULTS,
  ConfigFileSchema,
  DEFAULT_MODEL_TIMEOUT_MS,
  HUGGING_FACE_DEFAULTS,
  MODEL_BACKENDS,
  MODEL_ID_PATTERN,
  ROUTER_DEFAULTS,
  ROUTER_MODEL_ID,
  type ConfigFile,
  type ModelFileEntry,
} from "./config-schema.js";
import { DEFAULT_CONFIG_FILE, DEFAULT_MODELS } from "./default-config.js";
import { parseModelSource } from "./model-source.js";
import type { ArtifactSettings, HfModelConfig, HuggingFaceSettings, LlamaModelConfig, ModelConfig, RouterSettings, SamplingDefaults, SwitchboardConfig } from "./types.js";

/** Thrown when the configuration cannot be used; `problems` holds one line per problem. */
export class ConfigError extends Error {
  /** One entry per problem, each starting with the key path (`models[1].contextSize: ...`). */
  readonly problems: readonly string[];

  constructor(origin: string, problems: string[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`Invalid configuration (${origin}), ${count}:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  /** The config file (YAML, or JSON when it ends in `.json`). Falls back to `env.SWITCHBOARD_CONFIG`, then to the built-in default. */
  path?: string;
  /** The process environment (apps pass `process.env`); see {@link parseConfig} for the keys read. */
  env: Record<string, string | undefined>;
}

/** Reads the config file named by `path` (or `SWITCHBOARD_CONFIG`), or uses the built-in default, and resolves it. */
export async function loadConfig(options: LoadConfigOptions): Promise<SwitchboardConfig> {
  const filePath = nonEmpty(options.path) ?? nonEmpty(options.env.SWITCHBOARD_CONFIG);
  if (filePath === undefined) {
    return parseConfig(DEFAULT_CONFIG_FILE, { env: options.env, baseDir: process.cwd(), origin: "built-in default" });
  }
  const absolutePath = path.resolve(expandHome(filePath));
  let text: string;
  try {
    text = await readFile(absolutePath, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String((error as Error).message);
    throw new ConfigError(absolutePath, [`cannot read the config file: ${reason}`]);
  }
  const data = parseConfigText(text, absolutePath);
  return parseConfig(data, { env: options.env, baseDir: path.dirname(absolutePath), origin: absolutePath, configPath: absolutePath });
}

export interface ParseConfigOptions {
  /**
   * Environment overrides: `PORT`, `HOST`, `LOG_LEVEL`, `SWITCHBOARD_API_KEYS`
   * (comma-separated; replaces `apiKeys`), `SWITCHBOARD_MODELS_DIR`, `HF_TOKEN`
   * (replaces `huggingface.token`), `SWITCHBOARD_ARTIFACT_SECRET` (replaces
   * `artifacts.secret`). Empty values count as unset, so a blank
   * `SWITCHBOARD_API_KEYS=` never opens an API whose file sets keys. Secrets
   * are never quoted in problems.
   */
  env: Record<string, string | undefined>;
  /** Folder that relative paths in the data resolve against (the config file's folder). */
  baseDir: string;
  /** Named in error messages (a file path, "built-in default", "inline"). */
  origin?: string;
  /** Recorded as {@link SwitchboardConfig.configPath}. */
  configPath?: string;
}

/**
 * Validates already-parsed config data (the file format) and resolves it.
 * Useful for apps and tests that build their configuration in code.
 */
export function parseConfig(data: unknown, options: ParseConfigOptions): SwitchboardConfig {
  const origin = options.origin ?? "inline";
  const problems: Problem[] = [];
  const input = structuredClone(data ?? {}) as unknown;
  const envPaths = applyEnvironment(input, options.env, problems);

  if (validateFile(input)) {
    problems.push(...checkSemantics(input));
  } else {
    problems.push(...(validateFile.errors ?? []).flatMap((error) => describeSchemaError(error)));
    // Semantic checks still run on whatever parts are well-formed, so one pass reports everything.
    if (isRecord(input)) problems.push(...checkSemantics(input as ConfigFile));
  }

  if (problems.length > 0) {
    throw new ConfigError(origin, sortProblems(problems).map((problem) => formatProblem(problem, envPaths)));
  }
  const config = resolveConfig(input as ConfigFile, options, envPaths);
  return deepFreeze(config);
}

// ---------------------------------------------------------------------------
// Parsing the file

function parseConfigText(text: string, filePath: string): unknown {
  if (filePath.toLowerCase().endsWith(".json")) {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new ConfigError(filePath, [`not valid JSON: ${describeJsonError(error as Error, text)}`]);
    }
  }
  // YAML 1.2 (a superset of JSON); duplicate keys are errors.
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      filePath,
      document.errors.map((error) => {
        const position = error.linePos?.[0];
        const where = position ? `line ${position.line}, column ${position.col}` : `offset ${error.pos[0]}`;
        const summary = (error.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
        return `not valid YAML at ${where}: ${summary}`;
      }),
    );
  }
  return document.toJS() ?? {};
}

function describeJsonError(error: Error, text: string): string {
  const match = /position (\d+)/.exec(error.message);
  if (!match) return error.message;
  const offset = Number(match[1]);
  const before = text.slice(0, offset).split("\n");
  return `${error.message.replace(/ in JSON at position \d+.*$/, "")} at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

// ---------------------------------------------------------------------------
// Environment

/** Config paths set from the environment, mapped to the variable that set them. */
type EnvPaths = Map<string, string>;

function applyEnvironment(input: unknown, env: Record<string, string | undefined>, problems: Problem[]): EnvPaths {
  const envPaths: EnvPaths = new Map();
  if (!isRecord(input)) return envPaths;
  const setServer = (key: string, value: unknown, variable: string) => {
    if (input.server === undefined) input.server = {};
    if (!isRecord(input.server)) return; // the schema error about `server` is reported instead
    input.server[key] = value;
    envPaths.set(`server.${key}`, variable);
  };

  const port = nonEmpty(env.PORT);
  if (port !== undefined) {
    if (/^\d{1,5}$/.test(port.trim())) setServer("port", Number(port.trim()), "PORT");
    else problems.push({ path: "PORT", message: `must be a port number from 0 to 65535 (got ${JSON.stringify(port)})` });
  }
  const host = nonEmpty(env.HOST);
  if (host !== undefined) setServer("host", host.trim(), "HOST");
  const logLevel = nonEmpty(env.LOG_LEVEL);
  if (logLevel !== undefined) setServer("logLevel", logLevel.trim().toLowerCase(), "LOG_LEVEL");

  const apiKeys = nonEmpty(env.SWITCHBOARD_API_KEYS);
  if (apiKeys !== undefined) {
    const keys = apiKeys
      .split(",")
      .map((key) => key.trim())
      .filter((key) => key !== "");
    if (keys.length > 0) {
      input.apiKeys = keys;
      envPaths.set("apiKeys", "SWITCHBOARD_API_KEYS");
    }
  }
  const modelsDir = nonEmpty(env.SWITCHBOARD_MODELS_DIR);
  if (modelsDir !== undefined) {
    input.modelsDir = modelsDir.trim();
    envPaths.set("modelsDir", "SWITCHBOARD_MODELS_DIR");
  }
  const setSection = (section: "huggingface" | "artifacts", key: string, value: string, variable: string) => {
    if (input[section] === undefined) input[section] = {};
    const target = input[section];
    if (!isRecord(target)) return; // the schema error about the section is reported instead
    target[key] = value;
    envPaths.set(`${section}.${key}`, variable);
  };
  const token = nonEmpty(env.HF_TOKEN);
  if (token !== undefined) setSection("huggingface", "token", token.trim(), "HF_TOKEN");
  const secret = nonEmpty(env.SWITCHBOARD_ARTIFACT_SECRET);
  if (secret !== undefined) setSection("artifacts", "secret", secret.trim(), "SWITCHBOARD_ARTIFACT_SECRET");
  return envPaths;
}

// ---------------------------------------------------------------------------
// Schema validation

interface Problem {
  /** Key path such as `models[1].contextSize`; `config` for the whole file. */
  path: string;
  message: string;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ allErrors: true, discriminator: true, strict: true, verbose: true });
addFormats(ajv);
const validateFile = ajv.compile<ConfigFile>(ConfigFileSchema);

const BACKENDS = MODEL_BACKENDS.map((backend) => JSON.stringify(backend)).join(", ");

/** `/models/1/contextSize` → `models[1].contextSize`. */
function toKeyPath(pointer: string): string {
  if (pointer === "") return "";
  return pointer
    .slice(1)
    .split("/")
    .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((keyPath, segment) => (/^\d+$/.test(segment) ? `${keyPath}[${segment}]` : keyPath === "" ? segment : `${keyPath}.${segment}`), "");
}

function join(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

function describeSchemaError(error: ErrorObject): Problem[] {
  const at = toKeyPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return [{ path: join(at, String(params.missingProperty)), message: "required" }];
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const suggestion = closestKey(key, allowed);
      return [
        {
          path: join(at, key),
          message: `unknown key${suggestion ? ` (did you mean '${suggestion}'?)` : ""}; allowed: ${allowed.filter((name) => name !== "$schema").join(", ")}`,
        },
      ];
    }
    case "discriminator":
      return [
        {
          path: join(at, String(params.tag)),
          message: params.error === "tag" ? `required (one of ${BACKENDS})` : `must be one of ${BACKENDS}`,
        },
      ];
    case "oneOf":
      // With a discriminator the branch's own errors say what is wrong.
      return [];
    case "enum":
      return [{ path: at, message: `must be one of ${(params.allowedValues as unknown[]).map((value) => JSON.stringify(value)).join(", ")}` }];
    case "pattern":
      if (params.pattern === MODEL_ID_PATTERN) {
        return [
          {
            path: at,
            message: `${JSON.stringify(error.data)} is not a valid model name: it must start with a letter or digit and contain only letters, digits and . _ : / - (at most 128 characters)`,
          },
        ];
      }
      return [{ path: at, message: error.message ?? "invalid" }];
    case "type":
      return [{ path: at, message: `must be ${params.type === "array" ? "a list" : params.type === "object" ? "a mapping (object)" : params.type}` }];
    default:
      return [{ path: at, message: error.message ?? "invalid" }];
  }
}

/** A known key within edit distance 2 (case-insensitive), for typo hints. */
function closestKey(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

// ---------------------------------------------------------------------------
// Semantic checks (run on possibly schema-invalid data, so every access is guarded)

function checkSemantics(file: ConfigFile): Problem[] {
  const problems: Problem[] = [];
  const models: unknown[] = Array.isArray(file.models) ? file.models : file.models === undefined ? [...DEFAULT_MODELS] : [];
  const modelsFromFile = file.models !== undefined;

  // Every id and alias, where it appears.
  const names = new Map<string, { path: string; modelIndex: number; isId: boolean }[]>();
  const addName = (name: unknown, location: { path: string; modelIndex: number; isId: boolean }) => {
    if (typeof name !== "string") return;
    const list = names.get(name) ?? [];
    list.push(location);
    names.set(name, list);
  };

  models.forEach((model, index) => {
    if (!isRecord(model)) return;
    const at = `models[${index}]`;
    addName(model.id, { path: `${at}.id`, modelIndex: index, isId: true });
    if (Array.isArray(model.aliases)) {
      model.aliases.forEach((alias, aliasIndex) => addName(alias, { path: `${at}.aliases[${aliasIndex}]`, modelIndex: index, isId: false }));
    }

    if (typeof model.source === "string" && model.source !== "") {
      try {
        const source = parseModelSource(model.source);
        if (source.kind === "remote" && /^https?:\/\//i.test(source.uri) && !URL.canParse(source.uri)) {
          problems.push({ path: `${at}.source`, message: `not a valid URL: ${JSON.stringify(source.uri)}` });
        }
      } catch (error) {
        problems.push({ path: `${at}.source`, message: (error as Error).message });
      }
    }

    if (model.backend === "llama") problems.push(...checkLlamaTokens(model, at));
    if (model.backend === "hf") problems.push(...checkHfModel(model, at));
  });
  for (const [section, key] of [
    ["huggingface", "baseUrl"],
    ["huggingface", "hubUrl"],
    ["artifacts", "publicBaseUrl"],
    ["artifacts", "redisUrl"],
  ] as const) {
    const value = isRecord(file[section]) ? (file[section] as Record<string, unknown>)[key] : undefined;
    if (typeof value === "string" && /^[a-z]+:\/\//i.test(value) && !URL.canParse(value)) problems.push({ path: `${section}.${key}`, message: `not a valid URL: ${JSON.stringify(value)}` });
  }

  for (const [name, locations] of names) {
    if (locations.length < 2) continue;
    const [first, ...others] = locations as [(typeof locations)[number], ...typeof locations];
    const also = others.map((other) => (other.isId ? `models[${other.modelIndex}]` : other.path)).join(", ");
    problems.push({ path: first.path, message: `duplicate ${first.isId ? "id" : "alias"} '${name}' (also ${also})` });
  }

  // `default` always means defaultModel; only that model may also list it as an alias.
  const defaultModelName = typeof file.defaultModel === "string" ? file.defaultModel : modelsFromFile ? undefined : DEFAULT_CONFIG_FILE.defaultModel;
  const defaultOwner = defaultModelName === undefined ? undefined : names.get(defaultModelName)?.[0]?.modelIndex;
  if (typeof file.defaultModel === "string" && defaultOwner === undefined) {
    const known = [...names.keys()].map((name) => `'${name}'`).join(", ");
    problems.push({ path: "defaultModel", message: `'${file.defaultModel}' is not the id or alias of any model (known: ${known})` });
  }
  problems.push(...checkRouter(file, names, models));
  for (const location of names.get("default") ?? []) {
    if (location.isId) {
      problems.push({ path: location.path, message: "'default' is reserved: it always names defaultModel" });
    } else if (defaultOwner !== undefined && location.modelIndex !== defaultOwner) {
      problems.push({ path: location.path, message: `'default' is reserved for defaultModel ('${defaultModelName}')` });
    }
  }
  return problems;
}

/** The router's names must not shadow a model, and its roles must name chat models. */
function checkRouter(file: ConfigFile, names: Map<string, { path: string; modelIndex: number }[]>, models: unknown[]): Problem[] {
  const problems: Problem[] = [];
  const section = isRecord(file.router) ? file.router : {};
  if (section.enabled === false) return problems;
  const routerNames = [ROUTER_MODEL_ID, ...(Array.isArray(section.aliases) ? section.aliases : ROUTER_DEFAULTS.aliases)];
  routerNames.forEach((name, index) => {
    const owner = typeof name === "string" ? names.get(name)?.[0] : undefined;
    if (owner) problems.push({ path: owner.path, message: `'${name}' is the router's name${index === 0 ? "" : " (router.aliases)"}; rename the model, or set router.enabled: false` });
    if (name === "default") problems.push({ path: `router.aliases[${index - 1}]`, message: "'default' is reserved: it always names defaultModel" });
  });
  for (const role of ["planner", "selector", "responder"] as const) {
    const name = section[role];
    if (typeof name !== "string") continue;
    const owner = names.get(name)?.[0];
    if (!owner) {
      problems.push({ path: `router.${role}`, message: `'${name}' is not the id or alias of any model (known: ${[...names.keys()].map((known) => `'${known}'`).join(", ")})` });
      continue;
    }
    const model = models[owner.modelIndex];
    if (isRecord(model) && !isChatModelEntry(model)) problems.push({ path: `router.${role}`, message: `'${name}' is not a chat model: use a local (llama) model or a remote conversational or text-generation model` });
  }
  if (section.planner === undefined && section.enabled === true && !models.some((model) => isRecord(model) && isChatModelEntry(model)))
    problems.push({ path: "router.enabled", message: "the router needs a chat model to plan with, and the catalog has none: add a local (llama) model or a remote conversational model" });
  return problems;
}

function isChatModel(model: ModelConfig): boolean {
  return isChatModelEntry(model as unknown as Record<string, unknown>);
}

/** Local models chat; remote ones when their task is chat or text generation. */
function isChatModelEntry(model: Record<string, unknown>): boolean {
  return model.backend === "llama" || (model.backend === "hf" && (model.task === "conversational" || model.task === "text-generation"));
}

function checkLlamaTokens(model: Record<string, unknown>, at: string): Problem[] {
  const problems: Problem[] = [];
  const contextSize = integerOr(model.contextSize, CONFIG_DEFAULTS.contextSize);
  const maxTokens = integerOr(model.maxTokens, Math.min(CONFIG_DEFAULTS.maxTokens, contextSize ?? Infinity));
  const defaultMaxTokens = integerOr(model.defaultMaxTokens, Math.min(CONFIG_DEFAULTS.defaultMaxTokens, maxTokens ?? Infinity));
  if (contextSize !== undefined && maxTokens !== undefined && maxTokens > contextSize) {
    problems.push({ path: `${at}.maxTokens`, message: `must be <= contextSize (${contextSize})` });
  }
  if (maxTokens !== undefined && defaultMaxTokens !== undefined && defaultMaxTokens > maxTokens) {
    problems.push({ path: `${at}.defaultMaxTokens`, message: `must be <= maxTokens (${maxTokens})` });
  }
  return problems;
}

/** What the engine cannot serve, found before it starts (the same rules as `checkHfModels` in @switchboard/hf). */
function checkHfModel(model: Record<string, unknown>, at: string): Problem[] {
  const problems: Problem[] = [];
  const provider = typeof model.provider === "string" ? model.provider : undefined;
  if (provider !== undefined && model.endpointUrl !== undefined) {
    problems.push({ path: `${at}.endpointUrl`, message: "set provider or endpointUrl, not both" });
  }
  if (provider !== undefined && provider !== "hf-inference" && typeof model.task === "string" && model.task !== "conversational") {
    problems.push({
      path: `${at}.provider`,
      message: `'${provider}' can serve conversational models only; use 'hf-inference' or an endpointUrl for ${model.task}`,
    });
  }
  if (typeof model.endpointUrl === "string" && /^https?:\/\//.test(model.endpointUrl) && !URL.canParse(model.endpointUrl)) {
    problems.push({ path: `${at}.endpointUrl`, message: `not a valid URL: ${JSON.stringify(model.endpointUrl)}` });
  }
  return problems;
}

function integerOr(value: unknown, fallback: number): number | undefined {
  if (value === undefined) return Number.isFinite(fallback) ? fallback : undefined;
  return Number.isInteger(value) ? (value as number) : undefined;
}

// ---------------------------------------------------------------------------
// Resolution (only reached when the data is valid)

function resolveConfig(file: ConfigFile, options: ParseConfigOptions, envPaths: EnvPaths): SwitchboardConfig {
  const server = file.server ?? {};
  const modelEntries = file.models ?? [...DEFAULT_MODELS];
  const models = modelEntries.map((entry): ModelConfig => {
    switch (entry.backend) {
      case "llama":
        return resolveLlamaModel(entry, options.baseDir);
      case "hf":
        return resolveHfModel(entry);
    }
  });

  const defaultName = file.defaultModel ?? (file.models === undefined ? DEFAULT_CONFIG_FILE.defaultModel : undefined);
  const defaultModel =
    (defaultName !== undefined ? models.find((model) => model.id === defaultName || model.aliases.includes(defaultName)) : undefined) ??
    models.find((model) => model.aliases.includes("default")) ??
    models[0]!;

  // The environment's models folder is relative to where the process runs, the file's to the file.
  const modelsDirBase = envPaths.has("modelsDir") ? process.cwd() : options.baseDir;
  const config: SwitchboardConfig = {
    server: {
      host: server.host ?? CONFIG_DEFAULTS.host,
      port: server.port ?? CONFIG_DEFAULTS.port,
      bodyLimitBytes: server.bodyLimitBytes ?? CONFIG_DEFAULTS.bodyLimitBytes,
      corsOrigins: [...(server.corsOrigins ?? [])],
      metricsRequireKey: server.metricsRequireKey ?? false,
      logLevel: server.logLevel ?? CONFIG_DEFAULTS.logLevel,
    },
    apiKeys: [...(file.apiKeys ?? [])],
    modelsDir: resolvePath(file.modelsDir ?? CONFIG_DEFAULTS.modelsDir, modelsDirBase),
    defaultModel: defaultModel.id,
    models,
    huggingface: resolveHuggingFace(file.huggingface),
    artifacts: resolveArtifacts(file.artifacts, options.baseDir),
    router: resolveRouter(file.router, models, defaultModel),
  };
  if (options.configPath !== undefined) config.configPath = options.configPath;
  return config;
}

function resolveLlamaModel(entry: Extract<ModelFileEntry, { backend: "llama" }>, baseDir: string): LlamaModelConfig {
  const contextSize = entry.contextSize ?? CONFIG_DEFAULTS.contextSize;
  const maxTokens = entry.maxTokens ?? Math.min(CONFIG_DEFAULTS.maxTokens, contextSize);
  const source = parseModelSource(entry.source);
  const model: LlamaModelConfig = {
    id: entry.id,
    aliases: [...(entry.aliases ?? [])],
    backend: entry.backend,
    source: source.kind === "file" ? resolvePath(source.path, baseDir) : entry.source,
    contextSize,
    sequences: entry.sequences ?? CONFIG_DEFAULTS.sequences,
    threads: entry.threads ?? CONFIG_DEFAULTS.threads,
    maxWaiting: entry.maxWaiting ?? CONFIG_DEFAULTS.maxWaiting,
    defaultMaxTokens: entry.defaultMaxTokens ?? Math.min(CONFIG_DEFAULTS.defaultMaxTokens, maxTokens),
    maxTokens,
    sampling: { ...(entry.sampling ?? {}) } satisfies SamplingDefaults,
    embeddings: entry.embeddings ?? CONFIG_DEFAULTS.embeddings,
  };
  if (entry.description !== undefined) model.description = entry.description;
  return model;
}

function resolveHfModel(entry: Extract<ModelFileEntry, { backend: "hf" }>): HfModelConfig {
  const defaults = TASK_MODALITIES[entry.task];
  const model: HfModelConfig = {
    id: entry.id,
    aliases: [...(entry.aliases ?? [])],
    backend: "hf",
    model: entry.model,
    task: entry.task,
    timeoutMs: entry.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS,
    modalities: { in: [...(entry.modalities?.in ?? defaults.in)], out: [...(entry.modalities?.out ?? defaults.out)] },
  };
  if (entry.provider !== undefined) model.provider = entry.provider;
  if (entry.endpointUrl !== undefined) model.endpointUrl = entry.endpointUrl;
  if (entry.sendToken !== undefined) model.sendToken = entry.sendToken;
  if (entry.description !== undefined) model.description = entry.description;
  if (entry.downloads !== undefined) model.downloads = entry.downloads;
  if (entry.likes !== undefined) model.likes = entry.likes;
  return model;
}

function resolveHuggingFace(section: ConfigFile["huggingface"] = {}): HuggingFaceSettings {
  const defaults = HUGGING_FACE_DEFAULTS;
  const settings: HuggingFaceSettings = {
    baseUrl: section.baseUrl ?? defaults.baseUrl,
    hubUrl: section.hubUrl ?? defaults.hubUrl,
    retries: section.retries ?? defaults.retries,
    backoffBaseMs: section.backoffBaseMs ?? defaults.backoffBaseMs,
    backoffMaxMs: section.backoffMaxMs ?? defaults.backoffMaxMs,
    maxResponseBytes: section.maxResponseBytes ?? defaults.maxResponseBytes,
    circuitFailureThreshold: section.circuitFailureThreshold ?? defaults.circuitFailureThreshold,
    circuitCoolDownMs: section.circuitCoolDownMs ?? defaults.circuitCoolDownMs,
    userUrls: {
      allowList: [...(section.userUrls?.allowList ?? defaults.userUrls.allowList)],
      maxBytes: section.userUrls?.maxBytes ?? defaults.userUrls.maxBytes,
      timeoutMs: section.userUrls?.timeoutMs ?? defaults.userUrls.timeoutMs,
    },
  };
  if (section.token !== undefined) settings.token = section.token;
  return settings;
}

/** Router settings at their defaults with `planner` (and selector, responder) set to one model: for configurations built in code. */
export function defaultRouterSettings(planner: string, overrides: Partial<RouterSettings> = {}): RouterSettings {
  return { ...ROUTER_DEFAULTS, aliases: [...ROUTER_DEFAULTS.aliases], planner, selector: planner, responder: planner, ...overrides };
}

function resolveRouter(section: ConfigFile["router"] = {}, models: readonly ModelConfig[], defaultModel: ModelConfig): RouterSettings {
  const idOf = (name: string | undefined, fallback: string) => (name === undefined ? fallback : (models.find((model) => model.id === name || model.aliases.includes(name))?.id ?? fallback));
  // Without a planner named: the default model when it chats, else the first model that does.
  const chatModel = isChatModel(defaultModel) ? defaultModel : models.find(isChatModel);
  const planner = idOf(section.planner, chatModel?.id ?? defaultModel.id);
  return {
    // No chat model at all: nothing could plan, so the router is off.
    enabled: (section.enabled ?? ROUTER_DEFAULTS.enabled) && (section.planner !== undefined || chatModel !== undefined),
    aliases: [...(section.aliases ?? ROUTER_DEFAULTS.aliases)],
    planner,
    selector: idOf(section.selector, planner),
    responder: idOf(section.responder, planner),
    maxTasks: section.maxTasks ?? ROUTER_DEFAULTS.maxTasks,
    topK: section.topK ?? ROUTER_DEFAULTS.topK,
    deadlineMs: section.deadlineMs ?? ROUTER_DEFAULTS.deadlineMs,
    maxReplans: section.maxReplans ?? ROUTER_DEFAULTS.maxReplans,
    concurrency: section.concurrency ?? ROUTER_DEFAULTS.concurrency,
    runTtlSeconds: section.runTtlSeconds ?? ROUTER_DEFAULTS.runTtlSeconds,
  };
}

function resolveArtifacts(section: ConfigFile["artifacts"] = {}, baseDir: string): ArtifactSettings {
  const settings: ArtifactSettings = {
    ttlSeconds: section.ttlSeconds ?? ARTIFACT_DEFAULTS.ttlSeconds,
    maxBytes: section.maxBytes ?? ARTIFACT_DEFAULTS.maxBytes,
    maxTotalBytes: section.maxTotalBytes ?? ARTIFACT_DEFAULTS.maxTotalBytes,
    urlTtlSeconds: section.urlTtlSeconds ?? ARTIFACT_DEFAULTS.urlTtlSeconds,
  };
  if (section.dir !== undefined) settings.dir = resolvePath(section.dir, baseDir);
  if (section.redisUrl !== undefined) settings.redisUrl = section.redisUrl;
  if (section.publicBaseUrl !== undefined) settings.publicBaseUrl = section.publicBaseUrl.replace(/\/+$/, "");
  if (section.secret !== undefined) settings.secret = section.secret;
  return settings;
}

function expandHome(value: string): string {
  if (value === "~") return homedir();
  if (value.startsWith("~/")) return path.join(homedir(), value.slice(2));
  return value;
}

function resolvePath(value: string, baseDir: string): string {
  return path.resolve(baseDir, expandHome(value));
}

// ---------------------------------------------------------------------------
// Helpers

function formatProblem(problem: Problem, envPaths: EnvPaths): string {
  const variable = [...envPaths].find(([keyPath]) => problem.path === keyPath || problem.path.startsWith(`${keyPath}[`))?.[1];
  const name = problem.path === "" ? "config" : problem.path;
  return `${name}${variable ? ` (from ${variable})` : ""}: ${problem.message}`;
}

const TOP_LEVEL_ORDER = ["", "PORT", "$schema", "server", "apiKeys", "modelsDir", "defaultModel", "models", "huggingface", "artifacts", "router"];

/** File order: top-level keys as in the schema, then by model index, then as found; duplicates removed. */
function sortProblems(problems: Problem[]): Problem[] {
  const key = (problem: Problem) => {
    const head = /^[^.[]*/.exec(problem.path)?.[0] ?? "";
    const rank = TOP_LEVEL_ORDER.indexOf(head);
    const modelIndex = /^models\[(\d+)\]/.exec(problem.path)?.[1];
    return [rank === -1 ? TOP_LEVEL_ORDER.length : rank, modelIndex === undefined ? -1 : Number(modelIndex)] as const;
  };
  const seen = new Set<string>();
  return problems
    .map((problem, order) => ({ problem, order, key: key(problem) }))
    .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.order - b.order)
    .map(({ problem }) => problem)
    .filter((problem) => {
      const id = `${problem.path}\u0000${problem.message}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
