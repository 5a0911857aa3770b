/**
 * Streamed chat is passed on in batches of what arrived together, never by
 * waiting: a chunk that arrives alone goes out at once, chunks that arrive
 * in one packet go out as one event.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger, type ChatJob, type JobEvent } from "@switchboard/protocol";
import { HF_DEFAULTS } from "./hf-settings.js";
import { HfBackend } from "./hf-backend.js";
import { modelEntry } from "./test-support.js";

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;

let server: Server;
let backend: HfBackend;

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      if (request.url?.includes("slow")) {
        response.write(chunk("first "));
        setTimeout(() => response.end(chunk("second", "stop") + "data: [DONE]\n\n"), 300);
        return;
      }
      // Twenty chunks in one write, as a fast upstream sends them.
      response.end(Array.from({ length: 20 }, (_, index) => chunk(`w${index} `)).join("") + chunk("", "stop") + "data: [DONE]\n\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  backend = new HfBackend({
    settings: { ...HF_DEFAULTS },
    models: [
      modelEntry("fast", "conversational", "acme/fast", { endpointUrl: `${base}/fast` }),
      modelEntry("slow", "conversational", "acme/slow", { endpointUrl: `${base}/slow` }),
    ],
  });
});

afterAll(async () => {
  await backend.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const job = (model: string): ChatJob => ({ kind: "chat", id: "j", requestId: "r", model, messages: [{ role: "user", content: "hi" }], maxTokens: 32, sampling: {}, stop: [], stream: true });

describe("streamed chat", () => {
  it("passes chunks that arrived together as one text delta", async () => {
    const events: JobEvent[] = [];
    for await (const event of backend.run(job("fast"), { signal: new AbortController().signal, logger: silentLogger })) events.push(event);
    const deltas = events.filter((event) => event.type === "text-delta");
    expect(deltas).toHaveLength(1);
    expect(deltas[0]).toMatchObject({ text: Array.from({ length: 20 }, (_, index) => `w${index} `).join("") });
    expect(events.at(-1)).toMatchObject({ type: "finish", finishReason: "stop" });
  });

  it("passes a chunk that arrived alone at once, without waiting for the next", async () => {
    const started = Date.now();
    const arrivals: Array<[string, number]> = [];
    for await (const event of backend.run(job("slow"), { signal: new AbortController().signal, logger: silentLogger })) {
      if (event.type === "text-delta") arrivals.push([event.text, Date.now() - started]);
    }
    expect(arrivals.map(([text]) => text)).toEqual(["first ", "second"]);
    expect(arrivals[0]![1]).toBeLessThan(200);
    expect(arrivals[1]![1]).toBeGreaterThanOrEqual(250);
  });
});
