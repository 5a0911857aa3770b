// A GGUF whose metadata would abort llama.cpp is refused before it is loaded:
// the process keeps serving its other models and says which file is bad and why.
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "@switchboard/catalog";
import { writeGgufFile } from "@switchboard/llama";
import { testModelContent } from "@switchboard/llama/test-model";
import OpenAI from "openai";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEmbeddedServer, type EmbeddedServer } from "../src/embedded.js";

const directory = mkdtempSync(join(tmpdir(), "switchboard-model-files-"));
const brokenPath = join(directory, "no-heads.gguf");
let server: EmbeddedServer;
let baseURL: string;
const logLines: string[] = [];

beforeAll(async () => {
  // The tiny test model without llama.attention.head_count: llama.cpp aborts the process on it.
  const tiny = testModelContent("tiny");
  await writeGgufFile(brokenPath, {
    metadata: tiny.metadata.filter(([key]) => key !== "llama.attention.head_count"),
    tensors: [...tiny.tensors],
  });
  const config = parseConfig(
    {
      server: { logLevel: "warn" },
      modelsDir: directory,
      models: [
        { id: "switchboard-test-tiny", backend: "llama", source: "generated:tiny", contextSize: 1024 },
        { id: "broken", backend: "llama", source: brokenPath, contextSize: 1024 },
      ],
    },
    { env: {}, baseDir: directory },
  );
  const logger = pino({ level: "warn" }, { write: (line: string) => void logLines.push(line) });
  server = await createEmbeddedServer({ config, logger });
  await Promise.all([server.backend.whenReady("switchboard-test-tiny"), server.backend.whenReady("broken")]);
  baseURL = await server.app.listen({ port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await server?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("a GGUF that would crash llama.cpp", () => {
  it("is refused by name with its problem, and /ready reports the gateway degraded but serving", async () => {
    const response = await fetch(`${baseURL}/ready`);
    expect(response.status).toBe(200);
    const readiness = (await response.json()) as { status: string; models: Array<{ id: string; state: string; error?: string }> };
    expect(readiness.status).toBe("degraded");
    const broken = readiness.models.find((model) => model.id === "broken");
    expect(broken?.state).toBe("failed");
    expect(broken?.error).toContain("no-heads.gguf");
    expect(broken?.error).toContain("llama.attention.head_count");
    // The operator sees the same in the log, without the folder the file lives in.
    expect(logLines.join("\n")).toContain("llama.attention.head_count");
    expect(broken?.error).not.toContain(directory);
  });

  it("leaves the process serving the good model, and answers the bad one with a 503 that says why", async () => {
    const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "unused", maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: "switchboard-test-tiny",
      messages: [{ role: "user", content: "hello" }],
      max_tokens: 8,
    });
    expect(completion.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const failure = await client.chat.completions
      .create({ model: "broken", messages: [{ role: "user", content: "hello" }] })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((failure as InstanceType<typeof OpenAI.APIError>).message).toContain("head_count");
  });
});
