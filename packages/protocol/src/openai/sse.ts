/**
 * Server-sent events framing for OpenAI streams: each event is one
 * `data: <json>\n\n` frame, the stream ends with `data: [DONE]\n\n`, and an
 * error after the stream started is a frame whose JSON is `{"error": {...}}`
 * followed by the end of the stream without `[DONE]` (the official SDKs throw
 * an `APIError` when they meet a data frame with an `error` member).
 */
import { toOpenAIError, type ErrorPayload, type GatewayError } from "../errors.js";

/** The last frame of a stream that ended normally. */
export const SSE_DONE = "data: [DONE]\n\n";

/** Response headers of an OpenAI stream (the caller adds `x-request-id` and CORS). */
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  // Reverse proxies (nginx) must not buffer the stream.
  "x-accel-buffering": "no",
} as const;

/** One `data:` frame around already-serialised JSON. */
export function sseData(json: string): string {
  return "data: " + json + "\n\n";
}

/** The frame that reports an error once the stream has started. */
export function sseError(error: GatewayError | ErrorPayload): string {
  return sseData(JSON.stringify(toOpenAIError(error)));
}
