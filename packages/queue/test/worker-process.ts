/**
 * A worker process for the tests that kill or stop workers: the scripted
 * backend served over BullMQ, configured from the environment.
 *
 *   SB_TEST_REDIS_URL, SB_TEST_PREFIX, SB_TEST_TAG, SB_TEST_CONCURRENCY, SB_TEST_OPTIONS (JSON)
 *
 * SIGTERM closes the runtime gracefully and exits 0. The message `metrics`
 * is answered with the queue metrics this worker recorded so far.
 */
import { serveBackend, type ServeBackendOptions } from "../src/index.js";
import { TEST_MODEL } from "./jobs.js";
import { RecordingMetrics } from "./recording-metrics.js";
import { ScriptedBackend } from "./scripted-backend.js";

const tag = process.env.SB_TEST_TAG ?? "w";
const extra = JSON.parse(process.env.SB_TEST_OPTIONS ?? "{}") as Partial<ServeBackendOptions>;
const backend = new ScriptedBackend([TEST_MODEL], tag);
const metrics = new RecordingMetrics();
const server = serveBackend(backend, {
  connection: process.env.SB_TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
  prefix: process.env.SB_TEST_PREFIX ?? "sbtest",
  concurrencyPerModel: Number(process.env.SB_TEST_CONCURRENCY ?? 1),
  workerId: `worker-${tag}`,
  metrics,
  ...extra,
});

process.on("message", (message) => {
  if (message === "metrics") process.send?.({ retried: metrics.retried, stalled: metrics.stalled });
});
process.once("SIGTERM", () => {
  void server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
process.send?.("started");
