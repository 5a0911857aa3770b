// The foundation's API contract suite again, in fleet mode: the gateway runs
// no model; a llama worker takes the jobs from the real Redis and streams the
// events back. Same suite, same assertions as the embedded run.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, TEST_MODEL_ID } from "@switchboard/catalog";
import { createFleetGateway } from "@switchboard/gateway/fleet";
import { FleetKeys, llamaQueueName } from "@switchboard/queue";
import { Redis } from "ioredis";
import { pino } from "pino";
import { defineApiContractSuite } from "../../gateway/test/api-contract.js";
import { startLlamaWorker } from "../src/index.js";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const modelsDir = mkdtempSync(join(tmpdir(), "switchboard-fleet-models-"));

async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

defineApiContractSuite("fleet mode (BullMQ transport, one llama worker)", async () => {
  const prefix = `sbtest-${Math.random().toString(36).slice(2, 12)}`;
  const config = parseConfig(
    {
      server: { port: 0, host: "127.0.0.1", logLevel: "warn" },
      modelsDir,
      models: [{ id: TEST_MODEL_ID, backend: "llama", source: "generated:tiny", contextSize: 1024, sequences: 4, maxWaiting: 32 }],
    },
    { env: {}, baseDir: process.cwd() },
  );
  const logger = pino({ level: "warn" });
  const worker = await startLlamaWorker({ config, redisUrl, prefix, port: 0, host: "127.0.0.1", logger, transport: { heartbeatIntervalMs: 200 } });
  await worker.backend.whenReady(TEST_MODEL_ID);
  const gateway = await createFleetGateway({ config, redisUrl, prefix, logger });
  // Wait until the worker's heartbeat says it serves the model's queue.
  const redis = new Redis(redisUrl);
  const live = new FleetKeys(prefix).liveWorkers(llamaQueueName(TEST_MODEL_ID));
  for (let tries = 0; tries < 200 && (await redis.zcard(live)) === 0; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
  redis.disconnect();
  const address = await gateway.app.listen({ port: 0, host: "127.0.0.1" });
  return {
    baseURL: `${address}/v1`,
    modelId: TEST_MODEL_ID,
    close: async () => {
      await gateway.close();
      await worker.close();
      await deleteKeys(prefix);
    },
  };
});
