/**
 * The one `fetch` every upstream call goes through (the `@huggingface/inference`
 * client's only seam, and the engine's own direct calls). Per call it owns:
 *
 * - addressing: `https://router.huggingface.co/...` and
 *   `https://huggingface.co/api/...` are rewritten to the configured base
 *   URLs; any other address except the model's own `endpointUrl` is refused;
 * - time: one budget per call (`timeoutMs`, retries and backoff included),
 *   bounded further by the caller's signal; streams get it as an idle timeout;
 * - retries: 5xx, 408, 429 and network errors are retried with full-jitter
 *   exponential backoff, honouring `Retry-After` (the client is always called
 *   with `retry_on_error: false`, so this is the only layer that retries);
 * - "model is loading" (503 with `estimated_time`) becomes our 503
 *   `model_unavailable` with `Retry-After` at once, never a busy loop;
 * - bounded reads: bodies over `maxResponseBytes` are cut off; HTML pages,
 *   malformed or truncated JSON, and text where media was expected are
 *   refused before the client sees them;
 * - errors: GatewayErrors that name the model; the upstream body is logged
 *   (shortened, secrets redacted), never put in a message.
 */
import type { GatewayError, Logger } from "@switchboard/protocol";
import type { HfUpstreamMetrics } from "./hf-metrics.js";
import {
  BufferedResponse,
  StreamedResponse,
  fetchNetwork,
  requestBody,
  requestHeaders,
  undiciNetwork,
  type ChunkSource,
  type Network,
  type NetworkResponse,
} from "./upstream-network.js";
import { HUGGING_FACE_HUB_URL, HUGGING_FACE_ROUTER_URL, type HuggingFaceSettings } from "./hf-settings.js";
import {
  CallCancelledError,
  modelLoading,
  redactSecrets,
  upstreamBadResponse,
  upstreamFailed,
  upstreamRateLimited,
  upstreamRejectedInput,
  upstreamTimeout,
} from "./upstream-errors.js";

/** What a successful inference response must be. Hub lookups are always JSON. */
export type ExpectedBody = "json" | "binary" | "stream";

export interface UpstreamCall {
  /** Catalog id: what error messages and logs name. */
  model: string;
  /** The model's own server, when it has one; the only address allowed besides the bases. */
  endpointUrl?: string;
  /** Budget for the whole call. */
  timeoutMs: number;
  /** The caller's signal (client gone, job deadline). */
  signal?: AbortSignal;
  expect: ExpectedBody;
  logger: Logger;
  /** Provider label for metrics (`hf-inference`, `endpoint`, ...). */
  provider?: string;
  /**
   * Called when the client asks a passed-through stream for more bytes: it
   * has handed on every event of the bytes it had (the engine batches on it).
   */
  onStreamRead?: () => void;
}

export interface UpstreamFetchOptions {
  /** The network: `globalThis.fetch` unless a test or a benchmark passes another. */
  transport?: typeof fetch;
  /** Source of backoff jitter, in [0, 1). */
  random?: () => number;
  now?: () => number;
  /** Upstream latency, errors and retries (`createMetrics().hf`). */
  metrics?: HfUpstreamMetrics;
}

const ERROR_BODY_LIMIT = 64 * 1024;

class BodyTooLarge extends Error {}

/** Reads a body, refusing more than `maxBytes` (by declared length first, then by counting). */
async function readBounded(response: NetworkResponse, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(response.header("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.cancel();
    throw new BodyTooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await response.chunks.next();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      response.cancel();
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** How much of a stream's rest is read (to keep the connection) after the client stopped at `[DONE]`. */
const DRAIN_LIMIT = 64 * 1024;

/** `Retry-After` in milliseconds (seconds or an HTTP date), if present and sane. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function looksLikeHtml(contentType: string, body: Uint8Array): boolean {
  if (contentType.includes("text/html") || contentType.includes("application/xhtml")) return true;
  const start = Buffer.from(body.subarray(0, 64)).toString("latin1").trimStart().toLowerCase();
  return start.startsWith("<!doctype html") || start.startsWith("<html");
}

const isJsonType = (contentType: string) => contentType.startsWith("application/json") || /^application\/[\w.+-]*\+json/.test(contentType);

/** A failed attempt; `detail` (our words) is what a retried-out error reports. */
type Failure = { error: GatewayError; retryable: boolean; retryAfterMs?: number; detail?: string };

export class UpstreamFetch {
  private readonly network: Network;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly metrics: HfUpstreamMetrics | undefined;
  private readonly routerBase: string;
  private readonly hubApiBase: string;

  constructor(
    private readonly settings: HuggingFaceSettings,
    options: UpstreamFetchOptions = {},
  ) {
    // An injected fetch is honoured; otherwise undici's dispatcher API (see upstream-network.ts).
    this.network = options.transport ? fetchNetwork(options.transport) : undiciNetwork();
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.metrics = options.metrics;
    this.routerBase = settings.baseUrl.replace(/\/+$/, "");
    this.hubApiBase = `${settings.hubUrl.replace(/\/+$/, "")}/api/`;
  }

  /** Closes the keep-alive connections. */
  close(): Promise<void> {
    return this.network.close();
  }

  /** Points Hugging Face's fixed addresses at the configured servers. */
  rewrite(url: string): string {
    if (url === HUGGING_FACE_ROUTER_URL || url.startsWith(`${HUGGING_FACE_ROUTER_URL}/`)) return this.routerBase + url.slice(HUGGING_FACE_ROUTER_URL.length);
    if (url.startsWith(`${HUGGING_FACE_HUB_URL}/api/`)) return this.hubApiBase + url.slice(`${HUGGING_FACE_HUB_URL}/api/`.length);
    return url;
  }

  /** The router URL of a model on hf-inference, after rewriting. */
  routerModelUrl(model: string): string {
    return `${this.routerBase}/hf-inference/models/${model}`;
  }

  /** A `fetch` bound to one call: its model, budget, signal and expectations. */
  forCall(call: UpstreamCall): typeof fetch {
    const deadline = this.now() + call.timeoutMs;
    const owned = (input: string | URL | Request, init?: RequestInit) => this.request(call, deadline, input, init);
    const metrics = this.metrics;
    if (!metrics) return owned as typeof fetch;
    const provider = call.provider ?? "hf-inference";
    const measured = async (input: string | URL | Request, init?: RequestInit) => {
      const started = performance.now();
      try {
        const response = await owned(input, init);
        metrics.upstreamCall({ model: call.model, provider, seconds: (performance.now() - started) / 1000 });
        return response;
      } catch (error) {
        // A cancelled call says nothing about the upstream.
        if (!(error instanceof CallCancelledError)) {
          const code = (error as { code?: unknown }).code;
          metrics.upstreamCall({ model: call.model, provider, seconds: (performance.now() - started) / 1000, error: typeof code === "string" ? code : "upstream_error" });
        }
        throw error;
      }
    };
    return measured as typeof fetch;
  }

  private allowed(url: string, call: UpstreamCall): boolean {
    if (url.startsWith(`${this.routerBase}/`) || url.startsWith(this.hubApiBase)) return true;
    if (!call.endpointUrl) return false;
    const endpoint = call.endpointUrl.replace(/\/+$/, "");
    return url === endpoint || url.startsWith(`${endpoint}/`);
  }

  private log(call: UpstreamCall, level: "warn" | "debug", fields: Record<string, unknown>, message: string): void {
    const safe: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) safe[key] = typeof value === "string" ? redactSecrets(value, [this.settings.token]) : value;
    call.logger[level]({ model: call.model, ...safe }, message);
  }

  private async request(call: UpstreamCall, deadline: number, input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const original = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const url = this.rewrite(original);
    // For log lines only (without the query), so only parsed when one is written.
    let whereText: string | undefined;
    const where = () =>
      (whereText ??= (() => {
        try {
          const parsed = new URL(url);
          return `${parsed.origin}${parsed.pathname}`;
        } catch {
          return "an invalid URL";
        }
      })());
    if (!this.allowed(url, call)) {
      this.log(call, "warn", { url: where() }, "refused an upstream address outside the configured Hugging Face base URLs");
      throw upstreamFailed(call.model, "the client asked for an address outside the configured Hugging Face base URLs (is the token a Hugging Face token?)");
    }
    const expect: ExpectedBody = url.startsWith(this.hubApiBase) ? "json" : call.expect;
    if (call.signal?.aborted || init.signal?.aborted) throw new CallCancelledError();
    const headers = requestHeaders(init.headers);
    const body = await requestBody(init.body, headers);
    const method = init.method ?? "GET";

    let last: Failure | undefined;
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - this.now();
      if (remaining <= 0) throw last?.error ?? upstreamTimeout(call.model, call.timeoutMs);

      const control = new AbortController();
      let timedOut = false;
      let cancelled = false;
      const timer = setTimeout(() => {
        timedOut = true;
        control.abort();
      }, remaining);
      const onCancel = () => {
        cancelled = true;
        control.abort();
      };
      call.signal?.addEventListener("abort", onCancel, { once: true });
      init.signal?.addEventListener("abort", onCancel, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        call.signal?.removeEventListener("abort", onCancel);
        init.signal?.removeEventListener("abort", onCancel);
      };
      const interrupted = () => (cancelled ? new CallCancelledError() : timedOut ? upstreamTimeout(call.model, call.timeoutMs) : undefined);

      let response: NetworkResponse;
      try {
        response = await this.network.send(url, { method, headers, body, signal: control.signal });
      } catch {
        cleanup();
        const stop = interrupted();
        if (stop) throw stop;
        const detail = "the connection to the upstream server failed";
        last = { error: upstreamFailed(call.model, detail), retryable: true, detail };
        this.log(call, "warn", { url: where(), attempt }, "upstream connection failed");
        await this.backoff(call, deadline, attempt, last);
        continue;
      }

      if (response.status >= 200 && response.status < 300) {
        const contentType = (response.header("content-type") ?? "").toLowerCase();
        if (expect === "stream" && contentType.startsWith("text/event-stream")) {
          clearTimeout(timer);
          return this.passStream(call, response, control, cleanup, () => cancelled);
        }
        let answer: Uint8Array;
        try {
          answer = await readBounded(response, this.settings.maxResponseBytes);
        } catch (error) {
          control.abort(); // close the connection, not just the reader
          cleanup();
          if (error instanceof BodyTooLarge) {
            this.log(call, "warn", { url: where(), limit: this.settings.maxResponseBytes }, "upstream response over the size limit");
            throw upstreamBadResponse(call.model, `the response is larger than ${this.settings.maxResponseBytes} bytes`);
          }
          const stop = interrupted();
          if (stop) throw stop;
          const detail = "the response broke off";
          last = { error: upstreamFailed(call.model, detail), retryable: true, detail };
          await this.backoff(call, deadline, attempt, last);
          continue;
        }
        cleanup();
        const json = this.checkBody(call, where, expect, contentType, answer);
        // The client reads only what BufferedResponse offers of Response (see upstream-network.ts);
        // JSON checked here is handed over parsed, not parsed twice.
        return new BufferedResponse(answer, response.status, contentType || "application/octet-stream", json) as unknown as Response;
      }

      // An error answer: read a little of it for the log, then decide.
      let errorBody = "";
      try {
        errorBody = Buffer.from(await readBounded(response, ERROR_BODY_LIMIT)).toString("utf8");
      } catch {
        control.abort();
      }
      cleanup();
      const failure = this.classify(call, url, response, errorBody);
      this.log(call, "warn", { url: where(), status: response.status, attempt }, "upstream error");
      // The body may quote the request (prompts, headers): debug only, shortened and redacted.
      if (errorBody) this.log(call, "debug", { url: where(), status: response.status, upstream: errorBody.slice(0, 300) }, "upstream error body");
      if (!failure.retryable) throw failure.error;
      last = failure;
      await this.backoff(call, deadline, attempt, last);
    }
  }

  /** Refuses bodies that are not what the call expects, before the client parses them; returns parsed JSON bodies. */
  private checkBody(call: UpstreamCall, where: () => string, expect: ExpectedBody, contentType: string, body: Uint8Array): { value: unknown } | undefined {
    const refuse = (detail: string): never => {
      this.log(call, "warn", { url: where(), contentType, bytes: body.byteLength }, `unusable upstream response: ${detail}`);
      throw upstreamBadResponse(call.model, detail);
    };
    if (body.byteLength === 0) refuse("an empty answer");
    if (looksLikeHtml(contentType, body)) refuse("an HTML page instead of a model answer");
    if (expect === "stream") refuse(`a ${contentType || "typeless"} body instead of an event stream`);
    if (isJsonType(contentType)) {
      try {
        return { value: JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8")) };
      } catch {
        return refuse("malformed or truncated JSON");
      }
    }
    if (expect === "json") refuse(`a ${contentType || "typeless"} body instead of JSON`);
    if (contentType.startsWith("text/")) refuse(`${contentType} text instead of media`);
    return undefined;
  }

  private classify(call: UpstreamCall, url: string, response: NetworkResponse, body: string): Failure {
    const status = response.status;
    const retryAfterMs = parseRetryAfter(response.header("retry-after") ?? null, this.now());
    const hub = url.startsWith(this.hubApiBase);
    if (status === 503) {
      let estimated: number | undefined;
      let loading = false;
      try {
        const parsed = JSON.parse(body) as { estimated_time?: unknown; error?: unknown };
        if (typeof parsed.estimated_time === "number" && Number.isFinite(parsed.estimated_time)) estimated = parsed.estimated_time;
        loading = estimated !== undefined || (typeof parsed.error === "string" && /loading/i.test(parsed.error));
      } catch {
        // not JSON: an ordinary 503
      }
      if (loading) {
        const seconds = Math.max(1, Math.ceil(estimated ?? (retryAfterMs ?? 20_000) / 1000));
        return { error: modelLoading(call.model, seconds), retryable: false };
      }
    }
    if (status === 429) {
      const seconds = Math.max(1, Math.ceil((retryAfterMs ?? 1000) / 1000));
      return { error: upstreamRateLimited(call.model, seconds), retryable: true, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
    if (status >= 500 || status === 408) {
      const retryAfterSeconds = retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(retryAfterMs / 1000));
      const detail = `upstream answered HTTP ${status}`;
      return { error: upstreamFailed(call.model, detail, retryAfterSeconds), retryable: true, detail, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    }
    if (status === 401 || status === 403) return { error: upstreamFailed(call.model, `the upstream server refused the gateway's credentials (HTTP ${status})`), retryable: false };
    if (status === 404) {
      return { error: upstreamFailed(call.model, hub ? "the Hugging Face Hub does not know its model id" : "the upstream server does not serve it (HTTP 404)"), retryable: false };
    }
    if (hub) return { error: upstreamFailed(call.model, `the Hugging Face Hub answered HTTP ${status}`), retryable: false };
    return { error: upstreamRejectedInput(call.model, status), retryable: false };
  }

  /** Waits before the next attempt, or throws when there is none (out of attempts or budget). */
  private async backoff(call: UpstreamCall, deadline: number, attempt: number, failure: Failure): Promise<void> {
    if (attempt >= this.settings.retries) throw this.exhausted(call, attempt, failure);
    this.metrics?.upstreamRetry({ model: call.model, provider: call.provider ?? "hf-inference" });
    const ceiling = Math.min(this.settings.backoffMaxMs, this.settings.backoffBaseMs * 2 ** attempt);
    const delay = failure.retryAfterMs ?? Math.round(this.random() * ceiling);
    if (this.now() + delay >= deadline) throw this.exhausted(call, attempt, failure);
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(new CallCancelledError());
      };
      const timer = setTimeout(() => {
        call.signal?.removeEventListener("abort", onAbort);
        resolve();
      }, delay);
      if (call.signal?.aborted) onAbort();
      else call.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private exhausted(call: UpstreamCall, attempt: number, failure: Failure): GatewayError {
    const attempts = attempt + 1;
    if (failure.detail === undefined || attempts === 1) return failure.error;
    return upstreamFailed(call.model, `${failure.detail} (${attempts} attempts)`, failure.error.retryAfterSeconds);
  }

  /**
   * Passes an event stream through with a size cap and an idle timeout: one
   * timer per stream, re-armed as chunks are asked for and arrive, never a
   * timer or a copy per chunk. When the client lets go of the reader (it
   * stops at `data: [DONE]`), the rest of the body is read so the connection
   * goes back to the pool.
   */
  private passStream(call: UpstreamCall, response: NetworkResponse, control: AbortController, cleanup: () => void, cancelled: () => boolean): Response {
    const limit = this.settings.maxResponseBytes;
    let total = 0;
    let idle = false;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      cleanup();
    };
    const timer = setTimeout(() => {
      idle = true;
      control.abort();
      response.cancel();
      finish();
    }, call.timeoutMs);
    const source: ChunkSource = {
      next: async () => {
        call.onStreamRead?.();
        if (finished) {
          if (idle) throw upstreamTimeout(call.model, call.timeoutMs);
          return undefined;
        }
        timer.refresh();
        let chunk: IteratorResult<Uint8Array>;
        try {
          chunk = await response.chunks.next();
        } catch {
          finish();
          throw cancelled() ? new CallCancelledError() : idle ? upstreamTimeout(call.model, call.timeoutMs) : upstreamFailed(call.model, "the stream broke off");
        }
        if (chunk.done) {
          finish();
          return undefined;
        }
        total += chunk.value.byteLength;
        if (total > limit) {
          control.abort();
          response.cancel();
          finish();
          this.log(call, "warn", { limit }, "upstream stream over the size limit");
          throw upstreamBadResponse(call.model, `the stream is larger than ${limit} bytes`);
        }
        timer.refresh();
        return chunk.value;
      },
      cancel: () => {
        if (finished) return;
        control.abort();
        response.cancel();
        finish();
      },
      release: () => {
        if (finished) return;
        void (async () => {
          let drained = 0;
          try {
            for (let chunk = await source.next(); chunk !== undefined && !finished; chunk = await source.next()) {
              drained += chunk.byteLength;
              if (drained > DRAIN_LIMIT) return source.cancel();
            }
          } catch {
            // The stream ended badly after the client was done with it: nothing to report.
          }
        })();
      },
    };
    return new StreamedResponse(response.status, source) as unknown as Response;
  }
}

