/**
 * The chat request for a model on its own server (`endpointUrl`: TGI, vLLM,
 * any OpenAI-compatible server), built as `@huggingface/inference` builds it
 * for such a model (its hf-inference conversational helper: URL, headers,
 * body), without the client's per-call provider resolution. A proxied chat
 * pays for every microsecond here; `endpoint-chat.test.ts` holds these rules
 * to the client's own, request by request.
 *
 * Provider models are left to the client: their address and body depend on
 * the Hub's provider mapping and on each provider's helper.
 */
import { createRequire } from "node:module";
import type { HfCallArgs } from "./task-runners.js";

const clientVersion = (createRequire(import.meta.url)("@huggingface/inference/package.json") as { version: string }).version;
const USER_AGENT = `@huggingface/inference/${clientVersion}`;

/** Request fields the client reads as call arguments (they would override the model's): such requests stay with the client. */
const CLIENT_FIELDS = ["accessToken", "endpointUrl", "provider", "model", "urlTransform", "data"];

/** Whether the engine builds this chat request itself: an endpoint model, a model name the client accepts, plain chat fields. */
export function buildsEndpointChat(args: HfCallArgs, request: object): args is HfCallArgs & { endpointUrl: string } {
  if (args.endpointUrl === undefined) return false;
  // The client refuses model names that look like URLs; those calls stay with it, and so does the refusal.
  if (/^https?:/.test(args.model) || args.model.startsWith("/")) return false;
  for (const field of CLIENT_FIELDS) if (field in request) return false;
  return true;
}

/** The chat completions URL of an endpoint, as the client derives it. */
export function endpointChatUrl(endpointUrl: string): string {
  const url = endpointUrl.trim().replace(/\/+$/, "");
  if (url.endsWith("/v1")) return `${url}/chat/completions`;
  return url.endsWith("/chat/completions") ? url : `${url}/v1/chat/completions`;
}

/** Headers of every chat request to this endpoint, as the client sends them. */
export function endpointChatHeaders(args: HfCallArgs): Record<string, string> {
  return {
    ...(args.accessToken ? { Authorization: `Bearer ${args.accessToken}` } : {}),
    "Content-Type": "application/json",
    "User-Agent": USER_AGENT,
  };
}

/** The JSON body: the request's fields (streamed: then `stream: true`), then `model`. */
export function endpointChatBody(args: HfCallArgs, request: object, stream: boolean): string {
  return JSON.stringify(stream ? { ...request, stream: true, model: args.model } : { ...request, model: args.model });
}
