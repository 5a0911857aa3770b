/**
 * The engine builds an endpoint model's chat request itself; it must be the
 * request the client would have sent, byte for byte. Each case asks the real
 * client for its request (a fetch that only records) and compares.
 */
import { InferenceClient } from "@huggingface/inference";
import { describe, expect, it } from "vitest";
import { buildsEndpointChat, endpointChatBody, endpointChatHeaders, endpointChatUrl } from "./endpoint-chat.js";
import type { HfCallArgs } from "./task-runners.js";

const SENT = new Error("recorded");

async function clientRequest(args: HfCallArgs, request: Record<string, unknown>, stream: boolean): Promise<{ url: string; headers: unknown; body: unknown }> {
  let recorded: { url: string; headers: unknown; body: unknown } | undefined;
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    recorded = { url: String(input), headers: init?.headers, body: init?.body };
    throw SENT;
  }) as typeof globalThis.fetch;
  const client = new InferenceClient();
  const call = { ...args, ...request } as never;
  const options = { fetch, retry_on_error: false as const };
  await (stream ? client.chatCompletionStream(call, options).next() : client.chatCompletion(call, options)).catch((error: unknown) => {
    if (error !== SENT) throw error;
  });
  if (!recorded) throw new Error("the client sent nothing");
  return recorded;
}

const endpoints = [
  "http://127.0.0.1:8080",
  "http://127.0.0.1:8080/",
  "http://127.0.0.1:8080/v1",
  "http://127.0.0.1:8080/v1//",
  "https://x.endpoints.huggingface.cloud/models/acme/chat",
  "http://127.0.0.1:8080/custom/v1/chat/completions",
  "http://127.0.0.1:8080/trailing ",
];

const requests: Array<Record<string, unknown>> = [
  { messages: [{ role: "user", content: "hi" }] },
  {
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "ünïcode ✓" },
    ],
    max_tokens: 32,
    temperature: 0.5,
    stop: ["\n\n"],
    stream_options: { include_usage: true },
    tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
    tool_choice: { function: { name: "f" } },
  },
  // A caller's own `stream` field.
  { messages: [{ role: "user", content: "x" }], stream: false, max_tokens: 1 },
];

describe("an endpoint model's chat request", () => {
  for (const endpointUrl of endpoints) {
    for (const accessToken of [undefined, "hf_SwItChBoArDtEsTtOkEn0123456789"]) {
      const args: HfCallArgs = { model: "acme/chat", endpointUrl, ...(accessToken ? { accessToken } : {}) };
      it(`is the client's for ${JSON.stringify(endpointUrl)}${accessToken ? " with a token" : ""}`, async () => {
        expect(requests.every((request) => buildsEndpointChat(args, request))).toBe(true);
        for (const request of requests) {
          for (const stream of [true, false]) {
            const expected = await clientRequest(args, request, stream);
            expect({ url: endpointChatUrl(endpointUrl), headers: endpointChatHeaders(args), body: endpointChatBody(args, request, stream) }).toEqual(expected);
          }
        }
      });
    }
  }

  it("is left to the client for provider models, model names that look like URLs, and requests that carry call arguments", () => {
    const chat = { messages: [{ role: "user", content: "hi" }] };
    const endpointUrl = "http://127.0.0.1:8080";
    expect(buildsEndpointChat({ model: "acme/chat", provider: "hf-inference" }, chat)).toBe(false);
    expect(buildsEndpointChat({ model: "https://example.com/m", endpointUrl }, chat)).toBe(false);
    expect(buildsEndpointChat({ model: "/models/m", endpointUrl }, chat)).toBe(false);
    for (const field of ["model", "provider", "endpointUrl", "accessToken", "urlTransform", "data"]) {
      expect(buildsEndpointChat({ model: "acme/chat", endpointUrl }, { ...chat, [field]: "x" })).toBe(false);
    }
  });
});
