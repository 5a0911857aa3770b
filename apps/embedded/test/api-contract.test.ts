// The foundation's API contract suite against the real embedded server:
// gateway + llama engine + the generated tiny model, on an ephemeral port.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "@switchboard/catalog";
import { pino } from "pino";
import { defineApiContractSuite } from "../../gateway/test/api-contract.js";
import { createEmbeddedServer } from "../src/embedded.js";

const modelsDir = process.env.SWITCHBOARD_TEST_MODELS_DIR ?? mkdtempSync(join(tmpdir(), "switchboard-models-"));

defineApiContractSuite("embedded (in-process transport)", async () => {
  const config = parseConfig(
    {
      server: { port: 0, host: "127.0.0.1", logLevel: "warn" },
      modelsDir,
      models: [{ id: "switchboard-test-tiny", backend: "llama", source: "generated:tiny", contextSize: 1024, sequences: 4, maxWaiting: 32 }],
    },
    { env: {}, baseDir: process.cwd() },
  );
  const server = await createEmbeddedServer({ config, logger: pino({ level: "warn" }) });
  await server.backend.whenReady("switchboard-test-tiny");
  const address = await server.app.listen({ port: 0, host: "127.0.0.1" });
  return { baseURL: `${address}/v1`, modelId: "switchboard-test-tiny", close: () => server.close() };
});
