/**
 * The all-in-one composition: the gateway and the llama engine in one process
 * on the in-process transport. No Redis, no other services.
 */
import type { SwitchboardConfig } from "@switchboard/catalog";
import { Catalog } from "@switchboard/catalog";
import { buildGateway } from "@switchboard/gateway";
import { createConfiguredLlamaBackend, type ConfiguredBackendOptions, type LlamaBackend } from "@switchboard/llama";
import { InProcessDispatcher } from "@switchboard/queue";
import type { FastifyInstance } from "fastify";
import { pino, type Logger as PinoLogger } from "pino";

export interface EmbeddedOptions {
  config: SwitchboardConfig;
  /** A pino logger; one at the config's level on stdout when absent. */
  logger?: PinoLogger;
  onDownloadProgress?: ConfiguredBackendOptions["onDownloadProgress"];
}

export interface EmbeddedServer {
  app: FastifyInstance;
  backend: LlamaBackend;
  /** Stops taking requests, then unloads the models. */
  close(): Promise<void>;
}

export async function createEmbeddedServer(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const { config } = options;
  const logger = options.logger ?? pino({ level: config.server.logLevel });
  const backend = createConfiguredLlamaBackend(config, {
    logger: logger.child({ component: "llama" }),
    onDownloadProgress: options.onDownloadProgress,
  });
  const dispatcher = new InProcessDispatcher({ backends: [backend], logger });
  const app = await buildGateway({ config, catalog: new Catalog(config), dispatcher, logger });
  backend.start();
  let closing: Promise<void> | undefined;
  return {
    app,
    backend,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await dispatcher.close();
      })()),
  };
}
