/**
 * Builds a gateway for tests: the real app, the real catalog and the real
 * InProcessDispatcher, with a {@link ScriptedBackend} as the only engine.
 */
import type { FastifyInstance } from "fastify";
import { ARTIFACT_DEFAULTS, defaultRouterSettings, Catalog, HUGGING_FACE_DEFAULTS, type HfModelConfig, type LlamaModelConfig, type ModelConfig, type SwitchboardConfig } from "@switchboard/catalog";
import { InProcessDispatcher } from "@switchboard/queue";
import { Registry } from "@switchboard/metrics";
import { buildGateway } from "../src/index.js";
import { ScriptedBackend, textAnswer, type Script } from "./scripted-backend.js";

export const TEST_MODEL = "test/tiny-chat:q8";
export const EMBEDDING_OFF_MODEL = "no-embeddings";

export function testModel(overrides: Partial<LlamaModelConfig> = {}): LlamaModelConfig {
  return {
    id: TEST_MODEL,
    aliases: ["tiny"],
    backend: "llama",
    source: "generated:tiny",
    contextSize: 2048,
    sequences: 4,
    threads: 1,
    maxWaiting: 8,
    defaultMaxTokens: 64,
    maxTokens: 256,
    sampling: { temperature: 0.7, topK: 40 },
    embeddings: true,
    ...overrides,
  };
}

/** A remote model that serves chat and text completions (an OpenAI-compatible endpoint); the scripted backend answers for it. */
export const REMOTE_CHAT = "remote-chat";
export const remoteChatModel: HfModelConfig = {
  id: REMOTE_CHAT,
  aliases: [],
  backend: "hf",
  model: "acme/chat",
  task: "conversational",
  endpointUrl: "http://127.0.0.1:9/v1",
  timeoutMs: 1000,
  modalities: { in: ["text"], out: ["text"] },
};

export function testConfig(overrides: { server?: Partial<SwitchboardConfig["server"]>; apiKeys?: string[]; models?: ModelConfig[] } = {}): SwitchboardConfig {
  const models = overrides.models ?? [testModel(), testModel({ id: EMBEDDING_OFF_MODEL, aliases: [], embeddings: false })];
  return {
    server: {
      host: "127.0.0.1",
      port: 0,
      bodyLimitBytes: 1024 * 1024,
      corsOrigins: [],
      metricsRequireKey: false,
      logLevel: "silent",
      ...overrides.server,
    },
    apiKeys: overrides.apiKeys ?? [],
    modelsDir: ".switchboard/models",
    defaultModel: models[0]!.id,
    models,
    huggingface: { ...HUGGING_FACE_DEFAULTS, userUrls: { ...HUGGING_FACE_DEFAULTS.userUrls, allowList: [] } },
    artifacts: { ...ARTIFACT_DEFAULTS },
    router: defaultRouterSettings(models[0]!.id),
  };
}

export interface TestGateway {
  app: FastifyInstance;
  backend: ScriptedBackend;
  config: SwitchboardConfig;
  close(): Promise<void>;
}

export async function buildTestGateway(
  options: {
    script?: Script;
    config?: SwitchboardConfig;
    backend?: ScriptedBackend;
    dispatcherReady?: () => boolean;
    logStream?: { write(line: string): void };
    /** Record request and job metrics (default true). */
    recordMetrics?: boolean;
  } = {},
): Promise<TestGateway> {
  const config = options.config ?? testConfig();
  const backend =
    options.backend ??
    new ScriptedBackend({ models: config.models.map((model) => model.id), script: options.script ?? ((job) => textAnswer(job, ["Hello", ", ", "world"])) });
  const dispatcher = new InProcessDispatcher({ backends: [backend] });
  if (options.dispatcherReady) dispatcher.ready = async () => options.dispatcherReady!();
  const app = await buildGateway({
    config,
    catalog: new Catalog(config),
    dispatcher,
    metricsRegistry: new Registry(),
    ...(options.logStream ? { logStream: options.logStream } : {}),
    ...(options.recordMetrics === false ? { recordMetrics: false } : {}),
  });
  await app.ready();
  return {
    app,
    backend,
    config,
    async close() {
      await app.close();
      await dispatcher.close();
    },
  };
}
