/**
 * The Hugging Face backend as every process builds it from a config: the
 * remote models of the catalog, the `huggingface:` settings, and the artifact
 * store the process shares with its gateway.
 */
import type { ArtifactStore } from "@switchboard/artifacts";
import { isHfModel, type SwitchboardConfig } from "@switchboard/catalog";
import { silentLogger, type Logger } from "@switchboard/protocol";
import { HfBackend } from "./hf-backend.js";
import type { HfUpstreamMetrics } from "./hf-metrics.js";

export interface ConfiguredHfBackendOptions {
  logger?: Logger;
  /** Where binary outputs go; inline base64 without one. */
  artifacts?: ArtifactStore;
  /** Name of this worker, for `accepted` events and logs. */
  worker?: string;
  /** The network under the engine's owned fetch (benchmarks, tests); `globalThis.fetch` by default. */
  transport?: typeof fetch;
  /** Upstream latency, errors and retries (`createMetrics().hf`). */
  metrics?: HfUpstreamMetrics;
}

/** The config's remote models behind one backend; undefined when the config has none. */
export function createConfiguredHfBackend(config: SwitchboardConfig, options: ConfiguredHfBackendOptions = {}): HfBackend | undefined {
  const models = config.models.filter(isHfModel);
  if (models.length === 0) return undefined;
  return new HfBackend({
    settings: config.huggingface,
    models,
    logger: options.logger ?? silentLogger,
    ...(options.artifacts ? { artifacts: options.artifacts } : {}),
    ...(options.worker ? { worker: options.worker } : {}),
    ...(options.transport ? { transport: options.transport } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
}
