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
import type { GatewayError, JobSignal, Logger } from "@switchboard/protocol";
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
  type NetworkExchange,
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
  signal?: JobSignal;
  expect: ExpectedBody;
  logger: Logger;
  /** Provider label for metrics (`hf-inference`, `endpoint`, ...). */
  provider?: string;
}

/**
 * A call whose event stream the engine reads itself: `fetch` serves the
 * client's Hub lookups, `open` sends the request the client built and
 * returns the body. Both share the call's one budget.
 */
export interface StreamCall {
  fetch: typeof fetch;
  open(url: string, init: RequestInit): Promise<ChunkSource>;
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
    for (const chunk of value) {
      total += chunk.byteLength;
      chunks.push(chunk);
    }
    if (total > maxBytes) {
      response.cancel();
      throw new BodyTooLarge();
    }
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

/** Bytes that `trimStart` drops from a latin1 string: tab, line ends, vertical tab, form feed, space, no-break space. */
const isLeadingSpace = (byte: number) => (byte >= 0x09 && byte <= 0x0d) || byte === 0x20 || byte === 0xa0;

function looksLikeHtml(contentType: string, body: Uint8Array): boolean {
  if (contentType.includes("text/html") || contentType.includes("application/xhtml")) return true;
  // Most answers are JSON or media: unless the first non-space byte is '<', it is not a page.
  let first = 0;
  while (first < 64 && first < body.length && isLeadingSpace(body[first]!)) first += 1;
  if (body[first] !== 0x3c) return false;
  const start = Buffer.from(body.subarray(0, 64)).toString("latin1").trimStart().toLowerCase();
  return start.startsWith("<!doctype html") || start.startsWith("<html");
}

const isJsonType = (contentType: string) => contentType.startsWith("application/json") || /^application\/[\w.+-]*\+json/.test(contentType);

/** A URL for log lines: without its query, parsed only when a line is written. */
function where(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "an invalid URL";
  }
}

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

  /** The size cap of every answer, streams included. */
  get maxResponseBytes(): number {
    return this.settings.maxResponseBytes;
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
    return ((input: string | URL | Request, init?: RequestInit) => this.measured(call, () => this.request(call, deadline, input, init, false) as Promise<Response>)) as typeof fetch;
  }

  /** A streamed call (see {@link StreamCall}); `call.expect` is `stream`. */
  forStream(call: UpstreamCall): StreamCall {
    const deadline = this.now() + call.timeoutMs;
    return {
      fetch: ((input: string | URL | Request, init?: RequestInit) => this.measured(call, () => this.request(call, deadline, input, init, false) as Promise<Response>)) as typeof fetch,
      open: (url, init) => this.measured(call, () => this.request(call, deadline, url, init, true) as Promise<ChunkSource>),
    };
  }

  /** Records the call's latency (until the answer or the stream's headers) and its error code. */
  private async measured<T>(call: UpstreamCall, run: () => Promise<T>): Promise<T> {
    const metrics = this.metrics;
    if (!metrics) return run();
    const started = performance.now();
    try {
      const response = await run();
      metrics.upstreamCall({ model: call.model, provider: call.provider ?? "hf-inference", seconds: (performance.now() - started) / 1000 });
      return response;
    } catch (error) {
      // A cancelled call says nothing about the upstream.
      if (!(error instanceof CallCancelledError)) {
        const code = (error as { code?: unknown }).code;
        metrics.upstreamCall({ model: call.model, provider: call.provider ?? "hf-inference", seconds: (performance.now() - started) / 1000, error: typeof code === "string" ? code : "upstream_error" });
      }
      throw error;
    }
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

  /** One upstream call with its retries; a stream comes back as a `ChunkSource` when `streamSource`, else every answer as a `Response`. */
  private async request(call: UpstreamCall, deadline: number, input: string | URL | Request, given: RequestInit | undefined, streamSource: boolean): Promise<Response | ChunkSource> {
    const init = given ?? {};
    const original = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const url = this.rewrite(original);
    if (!this.allowed(url, call)) {
      this.log(call, "warn", { url: where(url) }, "refused an upstream address outside the configured Hugging Face base URLs");
      throw upstreamFailed(call.model, "the client asked for an address outside the configured Hugging Face base URLs (is the token a Hugging Face token?)");
    }
    const expect: ExpectedBody = url.startsWith(this.hubApiBase) ? "json" : call.expect;
    if (call.signal?.aborted || init.signal?.aborted) throw new CallCancelledError();
    const headers = requestHeaders(init.headers);
    // Text bodies (every JSON request) need no await.
    const body = typeof init.body === "string" ? init.body : await requestBody(init.body, headers);
    const method = init.method ?? "GET";

    let last: Failure | undefined;
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - this.now();
      if (remaining <= 0) throw last?.error ?? upstreamTimeout(call.model, call.timeoutMs);

      const exchange = this.network.send(url, { method, headers, body });
      const stops = new AttemptStops(exchange, remaining, call.signal, init.signal);
      let response: NetworkResponse;
      try {
        response = await exchange.answer;
      } catch {
        stops.clear();
        const stop = stops.interrupted(call);
        if (stop) throw stop;
        const detail = "the connection to the upstream server failed";
        last = { error: upstreamFailed(call.model, detail), retryable: true, detail };
        this.log(call, "warn", { url: where(url), attempt }, "upstream connection failed");
        await this.backoff(call, deadline, attempt, last);
        continue;
      }

      if (response.status >= 200 && response.status < 300) {
        const contentType = (response.header("content-type") ?? "").toLowerCase();
        if (expect === "stream" && contentType.startsWith("text/event-stream")) {
          const source = new PassedStream(this, call, response, exchange, stops);
          return streamSource ? source : (new StreamedResponse(response.status, source) as unknown as Response);
        }
        let answer: Uint8Array;
        try {
          answer = await readBounded(response, this.settings.maxResponseBytes);
        } catch (error) {
          exchange.abort(); // close the connection, not just the reader
          stops.clear();
          if (error instanceof BodyTooLarge) {
            this.log(call, "warn", { url: where(url), limit: this.settings.maxResponseBytes }, "upstream response over the size limit");
            throw upstreamBadResponse(call.model, `the response is larger than ${this.settings.maxResponseBytes} bytes`);
          }
          const stop = stops.interrupted(call);
          if (stop) throw stop;
          const detail = "the response broke off";
          last = { error: upstreamFailed(call.model, detail), retryable: true, detail };
          await this.backoff(call, deadline, attempt, last);
          continue;
        }
        stops.clear();
        const json = this.checkBody(call, url, expect, contentType, answer);
        // The client reads only what BufferedResponse offers of Response (see upstream-network.ts);
        // JSON checked here is handed over parsed, not parsed twice.
        return new BufferedResponse(answer, response.status, contentType || "application/octet-stream", json) as unknown as Response;
      }

      // An error answer: read a little of it for the log, then decide.
      let errorBody = "";
      try {
        errorBody = Buffer.from(await readBounded(response, ERROR_BODY_LIMIT)).toString("utf8");
      } catch {
        exchange.abort();
      }
      stops.clear();
      const failure = this.classify(call, url, response, errorBody);
      this.log(call, "warn", { url: where(url), status: response.status, attempt }, "upstream error");
      // The body may quote the request (prompts, headers): debug only, shortened and redacted.
      if (errorBody) this.log(call, "debug", { url: where(url), status: response.status, upstream: errorBody.slice(0, 300) }, "upstream error body");
      if (!failure.retryable) throw failure.error;
      last = failure;
      await this.backoff(call, deadline, attempt, last);
    }
  }

  /** Refuses bodies that are not what the call expects, before the client parses them; returns parsed JSON bodies. */
  private checkBody(call: UpstreamCall, url: string, expect: ExpectedBody, contentType: string, body: Uint8Array): { value: unknown } | undefined {
    if (body.byteLength === 0) this.refuse(call, url, contentType, body, "an empty answer");
    if (looksLikeHtml(contentType, body)) this.refuse(call, url, contentType, body, "an HTML page instead of a model answer");
    if (expect === "stream") this.refuse(call, url, contentType, body, `a ${contentType || "typeless"} body instead of an event stream`);
    if (isJsonType(contentType)) {
      try {
        return { value: JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8")) };
      } catch {
        return this.refuse(call, url, contentType, body, "malformed or truncated JSON");
      }
    }
    if (expect === "json") this.refuse(call, url, contentType, body, `a ${contentType || "typeless"} body instead of JSON`);
    if (contentType.startsWith("text/")) this.refuse(call, url, contentType, body, `${contentType} text instead of media`);
    return undefined;
  }

  private refuse(call: UpstreamCall, url: string, contentType: string, body: Uint8Array, detail: string): never {
    this.log(call, "warn", { url: where(url), contentType, bytes: body.byteLength }, `unusable upstream response: ${detail}`);
    throw upstreamBadResponse(call.model, detail);
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

  /** For the passed-through streams' log lines. */
  logFor(call: UpstreamCall, fields: Record<string, unknown>, message: string): void {
    this.log(call, "warn", fields, message);
  }
}

/**
 * One attempt's stops: its share of the budget and the caller's signals.
 * One object that is its own abort listener (`handleEvent`), so an attempt
 * makes no closures.
 */
class AttemptStops {
  timedOut = false;
  cancelled = false;
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly exchange: NetworkExchange,
    remaining: number,
    private readonly signal: JobSignal | undefined,
    private readonly other: JobSignal | null | undefined,
  ) {
    this.#timer = setTimeout(attemptTimedOut, remaining, this);
    signal?.addEventListener("abort", this, { once: true });
    if (other !== signal) other?.addEventListener("abort", this, { once: true });
  }

  /** An abort from either signal. */
  handleEvent(): void {
    this.cancelled = true;
    this.exchange.abort();
  }

  /** A stream keeps the signals but replaces the budget by its own idle timer. */
  clearTimer(): void {
    clearTimeout(this.#timer);
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.signal?.removeEventListener("abort", this);
    this.other?.removeEventListener("abort", this);
  }

  /** Why the attempt was stopped, if it was. */
  interrupted(call: UpstreamCall): Error | undefined {
    return this.cancelled ? new CallCancelledError() : this.timedOut ? upstreamTimeout(call.model, call.timeoutMs) : undefined;
  }
}

function attemptTimedOut(stops: AttemptStops): void {
  stops.timedOut = true;
  stops.exchange.abort();
}

/**
 * An event stream passed through with a size cap and an idle timeout: one
 * timer per stream, re-armed as chunks are asked for and arrive, never a
 * timer or a copy per chunk. When the reader lets go (the client stops at
 * `data: [DONE]`), the rest of the body is read so the connection goes back
 * to the pool.
 */
class PassedStream implements ChunkSource {
  #total = 0;
  #idle = false;
  #finished = false;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly owner: UpstreamFetch,
    private readonly call: UpstreamCall,
    private readonly response: NetworkResponse,
    private readonly exchange: NetworkExchange,
    private readonly stops: AttemptStops,
  ) {
    stops.clearTimer();
    this.#timer = setTimeout(streamWentIdle, call.timeoutMs, this);
  }

  async next(): Promise<Uint8Array[] | undefined> {
    if (this.#finished) {
      if (this.#idle) throw upstreamTimeout(this.call.model, this.call.timeoutMs);
      return undefined;
    }
    this.#timer.refresh();
    let read: IteratorResult<Uint8Array[]>;
    try {
      read = await this.response.chunks.next();
    } catch {
      this.#finish();
      throw this.stops.cancelled ? new CallCancelledError() : this.#idle ? upstreamTimeout(this.call.model, this.call.timeoutMs) : upstreamFailed(this.call.model, "the stream broke off");
    }
    if (read.done) {
      this.#finish();
      return undefined;
    }
    for (const chunk of read.value) this.#total += chunk.byteLength;
    const limit = this.owner.maxResponseBytes;
    if (this.#total > limit) {
      this.cancel();
      this.owner.logFor(this.call, { limit }, "upstream stream over the size limit");
      throw upstreamBadResponse(this.call.model, `the stream is larger than ${limit} bytes`);
    }
    this.#timer.refresh();
    return read.value;
  }

  cancel(): void {
    if (this.#finished) return;
    this.exchange.abort();
    this.response.cancel();
    this.#finish();
  }

  release(): void {
    if (!this.#finished) void this.#drain();
  }

  /** Idle too long: the upstream is dropped; the reader's next read says so. */
  wentIdle(): void {
    this.#idle = true;
    this.exchange.abort();
    this.response.cancel();
    this.#finish();
  }

  async #drain(): Promise<void> {
    let drained = 0;
    try {
      for (let chunks = await this.next(); chunks !== undefined && !this.#finished; chunks = await this.next()) {
        for (const chunk of chunks) drained += chunk.byteLength;
        if (drained > DRAIN_LIMIT) return this.cancel();
      }
    } catch {
      // The stream ended badly after the client was done with it: nothing to report.
    }
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timer);
    this.stops.clear();
  }
}

function streamWentIdle(stream: PassedStream): void {
  stream.wentIdle();
}
