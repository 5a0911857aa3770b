/**
 * The network under the owned fetch, and the responses it hands the client.
 *
 * WHATWG `fetch` costs most of an upstream call's CPU in Node 20 (measured:
 * ~50 us to read one small JSON body through `Response.json()`, ~18 us per
 * web ReadableStream, plus fetch's own request machinery), and undici's
 * `request` still builds a Node stream, an async resource and an abort
 * listener per call (~60-70 us of CPU per call on a 2-core machine against
 * its dispatcher API alone). The owned fetch therefore sends through
 * undici's `dispatch` (keep-alive pool per origin) with a handler of its own
 * that queues the body's chunks for one reader, and answers the client with
 * small objects that offer the parts of `Response` the client reads (`ok`,
 * `status`, `headers.get`, `json`, `text`, `blob`, `arrayBuffer`,
 * `body.getReader`). An injected `fetch` (tests, or a caller's own network)
 * is adapted to the same shape.
 */
import { Agent, type Dispatcher } from "undici";
import { microtask } from "@switchboard/protocol";

/** An upstream answer as the owned fetch reads it. */
export interface NetworkResponse {
  status: number;
  /** Lower-case header name → value (the first one of repeated headers). */
  header(name: string): string | undefined;
  /**
   * The body, one read at a time: the chunks that arrived together, in
   * order (undici's HTTP chunks of one socket read: kept apart, since
   * joining them would copy bytes that are read one by one anyway).
   */
  chunks: AsyncIterator<Uint8Array[]>;
  /** Stops reading: drops the rest of the body (and the connection, if the body is not over). */
  cancel(): void;
}

export interface NetworkRequest {
  method: string;
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
}

/** A request on its way: its answer (the status and headers), and a way to stop it at any point. */
export interface NetworkExchange {
  answer: Promise<NetworkResponse>;
  /** Stops the request or the body being read; the connection is dropped. A pending `answer` or read rejects. */
  abort(): void;
}

export interface Network {
  send(url: string, init: NetworkRequest): NetworkExchange;
  close(): Promise<void>;
}

/** Body bytes held for a reader that is behind before the socket is paused. */
const HIGH_WATER_MARK = 64 * 1024;

/** One request through undici's dispatcher: the handler, the answer and the body reader in one object. */
class UndiciExchange implements NetworkExchange, NetworkResponse, AsyncIterator<Uint8Array[]> {
  readonly answer: Promise<NetworkResponse>;
  status = 0;
  #answered: ((response: NetworkResponse) => void) | undefined;
  #refused: ((error: Error) => void) | undefined;
  #rawHeaders: Array<Buffer | string | Buffer[]> | undefined;
  #abort: ((error: Error) => void) | undefined;
  /** Set while the socket is paused because the reader is behind. */
  #resume: (() => void) | undefined;
  #resumeSocket: (() => void) | undefined;
  #aborted = false;
  #queue: Buffer[] = [];
  #queued = 0;
  #ended = false;
  #failure: Error | undefined;
  #waiting: { resolve: (result: IteratorResult<Uint8Array[]>) => void; reject: (error: Error) => void } | undefined;
  /** A delivery to the waiting reader is scheduled. */
  #delivering = false;

  constructor() {
    this.answer = new Promise<NetworkResponse>((resolve, reject) => {
      this.#answered = resolve;
      this.#refused = reject;
    });
  }

  get chunks(): AsyncIterator<Uint8Array[]> {
    return this;
  }

  header(name: string): string | undefined {
    // A few look-ups per answer over a dozen headers: a scan is cheaper than building a map.
    const raw = this.#rawHeaders;
    if (!raw) return undefined;
    for (let index = 0; index + 1 < raw.length; index += 2) {
      const key = raw[index]!;
      if (key.length !== name.length || key.toString("latin1").toLowerCase() !== name) continue;
      const value = raw[index + 1]!;
      return typeof value === "string" ? value : Array.isArray(value) ? (value[0]?.toString("latin1") ?? "") : value.toString("latin1");
    }
    return undefined;
  }

  abort(): void {
    if (this.#aborted || this.#ended || this.#failure) return;
    this.#aborted = true;
    this.#abort?.(new Error("aborted"));
  }

  cancel(): void {
    this.#queue = [];
    this.#queued = 0;
    this.abort();
  }

  /**
   * Everything that has arrived and not been read, as one read. undici hands
   * over a response body one HTTP chunk at a time, but all the chunks of one
   * socket read in one go: a fast upstream's 20 stream events are 20 calls
   * here and one read for the caller, so they cross the job layers as one.
   */
  next(): Promise<IteratorResult<Uint8Array[]>> {
    if (this.#queue.length > 0) return Promise.resolve({ done: false, value: this.#takeQueued() });
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  #takeQueued(): Uint8Array[] {
    const chunks = this.#queue;
    this.#queue = [];
    this.#queued = 0;
    const resume = this.#resume;
    if (resume) {
      this.#resume = undefined;
      resume();
    }
    return chunks;
  }

  /** Hands the waiting reader what the current socket read brought, once undici has delivered all of it. */
  #deliver = (): void => {
    this.#delivering = false;
    const waiting = this.#waiting;
    if (!waiting) return;
    this.#waiting = undefined;
    if (this.#queue.length > 0) waiting.resolve({ done: false, value: this.#takeQueued() });
    else if (this.#failure) waiting.reject(this.#failure);
    else if (this.#ended) waiting.resolve({ done: true, value: undefined });
    // Emptied by a cancel meanwhile: still waiting.
    else this.#waiting = waiting;
  };

  // undici's handler interface (the dispatcher calls these).

  onConnect(abort: (error: Error) => void): void {
    this.#abort = abort;
    if (this.#aborted) abort(new Error("aborted"));
  }

  onHeaders(status: number, rawHeaders: Array<Buffer | string | Buffer[]>, resume: () => void): boolean {
    if (status < 200) return true;
    this.status = status;
    this.#rawHeaders = rawHeaders;
    this.#resumeSocket = resume;
    this.#answered!(this);
    this.#answered = undefined;
    this.#refused = undefined;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#aborted) return true;
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    if (this.#waiting && !this.#delivering) {
      // A microtask runs after undici's parser has returned: every chunk of this read is queued by then.
      this.#delivering = true;
      microtask(this.#deliver);
    }
    if (this.#queued < HIGH_WATER_MARK) return true;
    this.#resume = this.#resumeSocket;
    return false;
  }

  onComplete(): void {
    this.#ended = true;
    // Body bytes still queued for a delivery go first; the reader sees the end on its next read.
    if (this.#delivering) return;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve({ done: true, value: undefined });
  }

  onError(error: Error): void {
    this.#failure = error;
    if (this.#refused) {
      this.#refused(error);
      this.#answered = undefined;
      this.#refused = undefined;
      return;
    }
    // What arrived before the failure is read first.
    if (this.#delivering) return;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }
}

/** undici's dispatcher API on a keep-alive pool of its own. */
export function undiciNetwork(): Network {
  // The owned fetch keeps each call's time budget itself: undici's own header and body
  // timers would only be set and cleared on every request.
  const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 300_000, connections: 512, headersTimeout: 0, bodyTimeout: 0 });
  return {
    send(url, init) {
      const exchange = new UndiciExchange();
      let target: URL;
      try {
        target = new URL(url);
      } catch (error) {
        exchange.onError(error as Error);
        return exchange;
      }
      const options: Dispatcher.DispatchOptions = {
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: init.method as Dispatcher.HttpMethod,
        headers: init.headers,
        body: init.body ?? null,
      };
      agent.dispatch(options, exchange as unknown as Dispatcher.DispatchHandler);
      return exchange;
    },
    close: () => agent.close(),
  };
}

/** An injected `fetch`, read the same way. */
export function fetchNetwork(fetchImplementation: typeof fetch): Network {
  return {
    send(url, init) {
      const control = new AbortController();
      const answer = (async (): Promise<NetworkResponse> => {
        const response = await fetchImplementation(url, {
          method: init.method,
          headers: init.headers,
          ...(init.body === undefined ? {} : { body: init.body }),
          signal: control.signal,
        });
        const reader = response.body?.getReader();
        return {
          status: response.status,
          header: (name) => response.headers.get(name) ?? undefined,
          chunks: {
            next: async () => {
              if (!reader) return { done: true, value: undefined };
              const { done, value } = await reader.read();
              return done ? { done: true, value: undefined } : { done: false, value: [value] };
            },
          },
          cancel: () => void reader?.cancel().catch(() => {}),
        };
      })();
      return { answer, abort: () => control.abort() };
    },
    close: async () => {},
  };
}

/** A request body as bytes or text; headers fetch would have set from the body are added. */
export async function requestBody(body: RequestInit["body"], headers: Record<string, string>): Promise<string | Uint8Array | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return body;
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (body instanceof Blob) {
    if (body.type && headers["content-type"] === undefined) headers["content-type"] = body.type;
    return new Uint8Array(await body.arrayBuffer());
  }
  // Anything else (form data, search params, streams): let Response serialise it as fetch would.
  const serialised = new Response(body);
  const type = serialised.headers.get("content-type");
  if (type && headers["content-type"] === undefined) headers["content-type"] = type;
  return new Uint8Array(await serialised.arrayBuffer());
}

/** Request headers as a plain object with lower-case names. */
export function requestHeaders(headers: RequestInit["headers"]): Record<string, string> {
  const result: Record<string, string> = {};
  if (!headers) return result;
  if (headers instanceof Headers || Array.isArray(headers)) {
    for (const [name, value] of new Headers(headers)) result[name] = value;
    return result;
  }
  // A plain object (every request the engine builds): no entry arrays.
  for (const name in headers) {
    const value = (headers as Record<string, string | undefined>)[name];
    if (value !== undefined) result[name.toLowerCase()] = String(value);
  }
  return result;
}

// ---------------------------------------------------------------------------
// What the client gets back

/**
 * The one header these answers carry. The client only ever calls
 * `headers.get`; a real `Headers` costs microseconds to build per answer.
 */
class ContentTypeHeader {
  constructor(private readonly value: string) {}

  get(name: string): string | null {
    return name.toLowerCase() === "content-type" ? this.value : null;
  }

  has(name: string): boolean {
    return name.toLowerCase() === "content-type";
  }
}

/** A fully read, checked answer. */
export class BufferedResponse {
  readonly ok: boolean;
  readonly statusText = "";
  readonly redirected = false;
  readonly type = "basic";
  readonly url = "";
  readonly headers: ContentTypeHeader;
  #used = false;

  constructor(
    private readonly content: Uint8Array,
    readonly status: number,
    contentType: string,
    /** The body already parsed (the owned fetch checks JSON bodies), handed out by `json()` once. */
    private readonly parsed?: { value: unknown },
  ) {
    this.ok = status >= 200 && status < 300;
    this.headers = new ContentTypeHeader(contentType);
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  get body(): ReadableStream<Uint8Array> {
    const bytes = this.#take();
    return new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return this.#take();
  }

  async text(): Promise<string> {
    return Buffer.from(this.#take()).toString("utf8");
  }

  async json(): Promise<unknown> {
    if (this.parsed) {
      this.#take();
      return this.parsed.value;
    }
    return JSON.parse(await this.text());
  }

  async blob(): Promise<Blob> {
    return new Blob([this.#take()], { type: this.headers.get("content-type") ?? "" });
  }

  clone(): BufferedResponse {
    // A clone parses for itself: the parsed value belongs to whoever reads this one.
    return new BufferedResponse(this.content, this.status, this.headers.get("content-type") ?? "");
  }

  #take(): Uint8Array {
    if (this.#used) throw new TypeError("Body has already been consumed.");
    this.#used = true;
    return this.content;
  }
}

/** The chunks of one read as one, for readers that take one chunk per read (the client's). */
function joined(chunks: Uint8Array[]): Uint8Array {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** What `ReadableStreamDefaultReader.read()` resolves to. */
type ReadResult = { done: false; value: Uint8Array } | { done: true; value: undefined };

/** A body read chunk by chunk, as `ReadableStream.getReader()` would give it. */
export interface ChunkSource {
  /** The chunks of the next read (see {@link NetworkResponse.chunks}); undefined at the end. */
  next(): Promise<Uint8Array[] | undefined>;
  /** The reader is not wanted any more: drop the rest. */
  cancel(): void;
  /** The client let go of the reader without cancelling (it read what it needed). */
  release(): void;
}

/** An event stream passed through; `body` offers the reader the client uses (and async iteration). */
export class StreamedResponse {
  readonly ok = true;
  readonly statusText = "";
  readonly redirected = false;
  readonly type = "basic";
  readonly url = "";
  readonly headers = new ContentTypeHeader("text/event-stream");
  readonly body: {
    locked: boolean;
    getReader(): { read(): Promise<ReadResult>; releaseLock(): void; cancel(): Promise<void>; closed: Promise<undefined> };
    cancel(): Promise<void>;
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
  };

  constructor(
    readonly status: number,
    source: ChunkSource,
  ) {
    const read = async (): Promise<ReadResult> => {
      const chunks = await source.next();
      return chunks === undefined ? { done: true, value: undefined } : { done: false, value: joined(chunks) };
    };
    const body = {
      locked: false,
      getReader() {
        body.locked = true;
        return {
          read,
          releaseLock: () => {
            body.locked = false;
            source.release();
          },
          cancel: async () => source.cancel(),
          closed: new Promise<undefined>(() => {}),
        };
      },
      cancel: async () => source.cancel(),
      [Symbol.asyncIterator]: () => ({
        next: read,
        return: async (): Promise<IteratorResult<Uint8Array>> => {
          source.cancel();
          return { done: true, value: undefined };
        },
      }),
    };
    this.body = body;
  }

  get bodyUsed(): boolean {
    return this.body.locked;
  }

  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const chunk of this.body) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts).toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}
