/**
 * `pnpm start`: the gateway and its models in one process (the embedded
 * default). It ignores REDIS_URL; fleet mode has its own start scripts.
 */
import { TEST_MODEL_ID } from "@switchboard/catalog";
import { formatProgressBar } from "@switchboard/llama";
import { loadConfigOrExit, stopOnSignals } from "@switchboard/service";
import { pino } from "pino";
import { createEmbeddedServer } from "./embedded.js";

const config = await loadConfigOrExit(process.env);

const logger = pino({ level: config.server.logLevel });
const drawBars = process.stderr.isTTY;
const lastLoggedTenth = new Map<string, number>();

const server = await createEmbeddedServer({
  config,
  logger,
  onDownloadProgress(model, progress) {
    const line = `${model.id} ${formatProgressBar(progress)}`;
    if (drawBars) {
      process.stderr.write(`\r${line}${progress.downloadedBytes >= progress.totalBytes ? "\n" : ""}`);
      return;
    }
    // Not a terminal: a log line every 10% instead of a bar.
    const tenth = progress.totalBytes > 0 ? Math.floor((10 * progress.downloadedBytes) / progress.totalBytes) : 0;
    if (tenth !== lastLoggedTenth.get(model.id)) {
      lastLoggedTenth.set(model.id, tenth);
      logger.info({ model: model.id, downloadedBytes: progress.downloadedBytes, totalBytes: progress.totalBytes }, `downloading ${line}`);
    }
  },
});

if (config.models.some((model) => model.id === TEST_MODEL_ID)) {
  logger.info(
    `Serving '${TEST_MODEL_ID}', a random-weight test model that writes gibberish. To serve real models, ` +
      "write a config file (see README, Configuration) and start with SWITCHBOARD_CONFIG=path/to/switchboard.yaml.",
  );
}

await server.app.listen({ port: config.server.port, host: config.server.host });

stopOnSignals(logger, "shutting down", () => server.close());
