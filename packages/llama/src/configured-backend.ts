/**
 * The llama backend as every process builds it from a config: model files are
 * resolved (generated, downloaded or local), checked before this process loads
 * them, then loaded in the background.
 */
import type { LlamaModelConfig, SwitchboardConfig } from "@switchboard/catalog";
import { silentLogger, type Logger } from "@switchboard/protocol";
import { LlamaBackend, type LlamaEngineMetrics, type LlamaGpu } from "./engine/index.js";
import { checkGguf, ensureTestModel } from "./gguf/index.js";
import { resolveModelSource, type DownloadProgress } from "./model-source/index.js";

export interface ConfiguredBackendOptions {
  /** Only these model ids (a worker serving part of the catalog); all llama models when absent. */
  modelIds?: string[];
  logger?: Logger;
  gpu?: LlamaGpu;
  /** Called as a model downloads, to draw progress for an operator. */
  onDownloadProgress?: (model: LlamaModelConfig, progress: DownloadProgress) => void;
  /** Base URL for `hf:` sources (a mirror); node-llama-cpp's own default otherwise. */
  huggingFaceEndpoint?: string;
  /** Model load times (`createMetrics().llama`). */
  metrics?: LlamaEngineMetrics;
}

export function createConfiguredLlamaBackend(config: SwitchboardConfig, options: ConfiguredBackendOptions = {}): LlamaBackend {
  const logger = options.logger ?? silentLogger;
  const wanted = options.modelIds ? new Set(options.modelIds) : undefined;
  const models = config.models.filter((model): model is LlamaModelConfig => model.backend === "llama" && (!wanted || wanted.has(model.id)));
  return new LlamaBackend({
    models,
    logger,
    gpu: options.gpu,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    resolvePath: (model, report) =>
      resolveModelSource(model.source, {
        modelsDir: config.modelsDir,
        logger: logger.child({ model: model.id }),
        generate: ensureTestModel,
        huggingFaceEndpoint: options.huggingFaceEndpoint,
        onProgress: (progress) => {
          report({
            id: model.id,
            state: "downloading",
            progress: progress.totalBytes > 0 ? progress.downloadedBytes / progress.totalBytes : 0,
          });
          options.onDownloadProgress?.(model, progress);
        },
      }),
    // A GGUF with inconsistent metadata can abort the whole process inside llama.cpp.
    checkFile: checkGguf,
  });
}
