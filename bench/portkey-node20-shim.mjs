/**
 * Measurement-only preload for @portkey-ai/gateway 1.15.2 on Node 20 (used by
 * bench/hf-proxy.ts, never by Switchboard): Portkey sets headers on the
 * Response objects `fetch` returns, whose headers are immutable in Node 20's
 * fetch, so every stream fails with `TypeError: immutable`. This re-wraps
 * event-stream responses in a Response with mutable headers; other responses
 * are left alone, so the shim costs Portkey as little as possible.
 */
const originalFetch = globalThis.fetch;
globalThis.fetch = async function fetchWithMutableHeaders(input, init) {
  const response = await originalFetch(input, init);
  if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) return response;
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: new Headers(response.headers) });
};
