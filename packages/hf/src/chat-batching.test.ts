/**
 * Streamed chat is passed on in batches of what arrived together, never by
 * waiting: a chunk that arrives alone goes out at once, chunks that arrive
 * in one packet go out as one event, also when they are separate HTTP
 * chunks. The engine reads the upstream's event stream itself: odd framing
 * reads the same, and a broken stream still ends in an error after what came
 * before it.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger, type ChatJob, type JobEvent } from "@switchboard/protocol";
import { HF_DEFAULTS } from "./hf-settings.js";
import { HfBackend } from "./hf-backend.js";
import { captureLogger, modelEntry } from "./test-support.js";

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;

let server: Server;
let backend: HfBackend;
const logger = captureLogger();

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      const url = request.url ?? "";
      if (url.includes("framing")) {
        // CRLF line ends, a comment, an event field, and writes that cut events and lines apart.
        const text = `: keep-alive\r\n\r\nevent: message\r\n${chunk("one ").replace(/\n/g, "\r\n")}${chunk("two ")}${chunk("three", "stop")}data: [DONE]\n\n`;
        const pieces = [text.slice(0, 7), text.slice(7, 60), text.slice(60, 61), text.slice(61, 200), text.slice(200)];
        const write = (index: number): void => {
          if (index === pieces.length) return void response.end();
          response.write(pieces[index]);
          setTimeout(() => write(index + 1), 5);
        };
        write(0);
        return;
      }
      if (url.includes("error-event")) {
        response.end(chunk("partial ") + `data: ${JSON.stringify({ error: { message: "overloaded, key hf_SeCrEt0123456789" } })}\n\n`);
        return;
      }
      if (url.includes("bad-json")) {
        response.end(chunk("partial ") + 'data: {"choices": [\n\n' + chunk("", "stop") + "data: [DONE]\n\n");
        return;
      }
      if (url.includes("no-finish")) {
        response.end(chunk("partial ") + "data: [DONE]\n\n");
        return;
      }
      if (url.includes("slow")) {
        response.write(chunk("first "));
        setTimeout(() => response.end(chunk("second", "stop") + "data: [DONE]\n\n"), 300);
        return;
      }
      if (url.includes("chunked")) {
        // Twenty writes, as a server that writes event by event sends them: twenty HTTP chunks, corked into one packet.
        response.socket!.cork();
        for (let index = 0; index < 20; index++) response.write(chunk(`w${index} `));
        response.write(chunk("", "stop"));
        response.socket!.uncork();
        response.end("data: [DONE]\n\n");
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
      ...["chunked", "framing", "error-event", "bad-json", "no-finish"].map((name) => modelEntry(name, "conversational", `acme/${name}`, { endpointUrl: `${base}/${name}` })),
    ],
    logger,
  });
});

afterAll(async () => {
  await backend.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const job = (model: string): ChatJob => ({ kind: "chat", id: "j", requestId: "r", model, messages: [{ role: "user", content: "hi" }], maxTokens: 32, sampling: {}, stop: [], stream: true });

describe("streamed chat", () => {
  it.each([
    ["chunks that arrived in one write", "fast"],
    ["HTTP chunks that arrived in one packet", "chunked"],
  ])("passes %s as one text delta", async (_name, model) => {
    const events: JobEvent[] = [];
    for await (const event of backend.run(job(model), { signal: new AbortController().signal, logger: silentLogger })) events.push(event);
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

  it("reads CRLF line ends, comments and events cut apart across writes as the same stream", async () => {
    const events: JobEvent[] = [];
    for await (const event of backend.run(job("framing"), { signal: new AbortController().signal, logger: silentLogger })) events.push(event);
    const text = events.flatMap((event) => (event.type === "text-delta" ? [event.text] : [])).join("");
    expect(text).toBe("one two three");
    expect(events.at(-1)).toMatchObject({ type: "finish", finishReason: "stop" });
  });

  it.each([
    ["an error event", "error-event", { status: 502, code: "upstream_error" }],
    ["an event that is not JSON", "bad-json", { status: 502, code: "upstream_bad_response" }],
    ["[DONE] before a finish reason", "no-finish", { status: 502, code: "upstream_bad_response" }],
  ])("ends a stream with %s in an error, after the text that came before it", async (_name, model, error) => {
    const events: JobEvent[] = [];
    for await (const event of backend.run(job(model), { signal: new AbortController().signal, logger })) events.push(event);
    expect(events[0]).toMatchObject({ type: "accepted" });
    expect(events.filter((event) => event.type === "text-delta").map((event) => (event as { text: string }).text).join("")).toBe("partial ");
    expect(events.at(-1)).toMatchObject({ type: "error", error });
    // The upstream's own words stay out of the error; the log keeps them, with the key redacted.
    expect(JSON.stringify(events.at(-1))).not.toContain("overloaded");
    if (model === "error-event") expect(logger.lines.some((line) => line.includes("overloaded, key hf_[REDACTED]"))).toBe(true);
    expect(logger.lines.join("\n")).not.toContain("hf_SeCrEt0123456789");
  });
});
