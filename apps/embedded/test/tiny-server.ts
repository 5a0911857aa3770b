/**
 * The embedded server on the generated tiny model (random weights, real
 * llama.cpp), with the router planning on it, and the official `openai`
 * client pointed at it: what the API tests of single features start.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { pino } from "pino";
import { expect } from "vitest";
import { parseConfig } from "@switchboard/catalog";
import { createEmbeddedServer, type EmbeddedServer } from "../src/embedded.js";

export interface TinyServer {
  server: EmbeddedServer;
  baseUrl: string;
  client: OpenAI;
  modelsDir: string;
  close(): Promise<void>;
}

export async function startTinyServer(model: string): Promise<TinyServer> {
  const modelsDir = mkdtempSync(join(tmpdir(), `switchboard-${model}-`));
  const config = parseConfig(
    {
      server: { host: "127.0.0.1", port: 0, logLevel: "silent" },
      modelsDir,
      models: [{ id: model, backend: "llama", source: "generated:tiny", contextSize: 1024, sequences: 2, defaultMaxTokens: 12 }],
      router: { planner: model },
    },
    { env: {}, baseDir: modelsDir },
  );
  const server = await createEmbeddedServer({ config, logger: pino({ level: "silent" }) });
  await server.app.listen({ host: "127.0.0.1", port: 0 });
  const address = server.app.server.address() as { port: number };
  const baseUrl = `http://127.0.0.1:${address.port}`;
  expect((await server.backend.whenReady(model)).state).toBe("ready");
  return {
    server,
    baseUrl,
    client: new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: "unused", maxRetries: 0 }),
    modelsDir,
    async close() {
      await server.close();
      rmSync(modelsDir, { recursive: true, force: true });
    },
  };
}
