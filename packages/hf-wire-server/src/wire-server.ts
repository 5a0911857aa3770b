/**
 * A local HTTP server that speaks the Hugging Face wire format, for tests and
 * benchmarks. It serves both addressing styles the client uses:
 *
 * - provider `hf-inference` through the router: the Hub lookup
 *   `GET /api/models/{model}?expand[]=inferenceProviderMapping`, then
 *   `POST /hf-inference/models/{model}` (`/pipeline/{task}` for
 *   feature-extraction and sentence-similarity, `/v1/chat/completions` for
 *   chat, `/v1/completions` for text generation), and the auto router's
 *   `POST /v1/chat/completions`;
 * - `endpointUrl`: `POST /endpoints/{model}` with the same suffixes.
 *
 * Every request is checked against the `@huggingface/tasks` input spec of its
 * task (binary inputs must also really be images or audio), and every answer
 * against the output spec before it is sent. A request that breaks the spec is
 * answered 400 and recorded as a violation; tests assert there are none.
 * Faults are injected per model with {@link WireServer.setBehaviour}.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { sniffMedia } from "./media.js";
import { SpecValidator } from "./spec-validator.js";
import { TASK_WIRES, chatAnswerText } from "./task-wire.js";

/** Faults a model can be told to produce. */
export type WireFault =
  /** 503 `{error: "... is currently loading", estimated_time}`. */
  | "503-loading"
  /** 500 with a JSON error. */
  | "500"
  /** 429 with `Retry-After`. */
  | "429"
  /** An HTML page (status 200 unless `status` says otherwise). */
  | "html"
  /** JSON cut off half-way (status 200); for streams, one good event then a cut-off one. */
  | "truncated"
  /** An endless-looking JSON body of `hugeBytes` (default 8 MiB), chunked, no length. */
  | "huge"
  /** Answers correctly after `delayMs` (default 10 s). */
  | "slow"
  /** Valid JSON of the wrong shape. */
  | "wrong-shape"
  /** An error whose body echoes the request's Authorization header (status 500 unless `status`). */
  | "echo-token"
  /** Destroys the connection without an answer. */
  | "reset";

export interface WireBehaviour {
  fail: WireFault;
  /** How many requests fail before the model answers normally again; forever when absent. */
  times?: number;
  /** `estimated_time` of a loading answer, seconds. */
  estimatedTime?: number;
  /** `Retry-After` seconds sent with 429, 500 and 503 faults. */
  retryAfterSeconds?: number;
  delayMs?: number;
  hugeBytes?: number;
  status?: number;
}

export type AddressingStyle = "hub" | "provider" | "endpoint" | "auto-router";

export interface RecordedRequest {
  method: string;
  path: string;
  style: AddressingStyle | "unknown";
  model?: string;
  /** The task the request was checked as (`chat`, `completions` or a pipeline tag). */
  task?: string;
  /** Value of the Authorization header as received. */
  authorization?: string;
  contentType?: string;
  bodyBytes: number;
  /** The JSON body of a chat or text completion request, as received (other requests: absent). */
  body?: Record<string, unknown>;
  status: number;
  /** Epoch milliseconds when the request arrived. */
  receivedAt: number;
  fault?: WireFault;
  /** Spec problems found in the request or in the answer we meant to send. */
  violations: string[];
}

export interface WireServerOptions {
  port?: number;
  host?: string;
  /** Model id → pipeline tag (`conversational` for chat models). Models can be added later with `addModel`. */
  models?: Record<string, string>;
  /** When set, requests without `Authorization: Bearer <token>` get 401. */
  token?: string;
}

export interface WireServer {
  /** Base URL, no trailing slash: use it as both the router and the Hub base URL. */
  url: string;
  /** Base for `endpointUrl` models: `${endpointBase}/{model}`. */
  endpointBase: string;
  requests: RecordedRequest[];
  /** Every violation recorded so far. */
  violations(): string[];
  /** TCP connections accepted so far. */
  connections(): number;
  addModel(model: string, task: string): void;
  setBehaviour(model: string, behaviour: WireBehaviour | null): void;
  /** Forgets recorded requests and behaviours (models stay). */
  reset(): void;
  close(): Promise<void>;
}

const MAX_REQUEST_BYTES = 64 * 1024 * 1024;
const CHAT_SUFFIXES = ["/v1/chat/completions", "/chat/completions"];
const COMPLETION_SUFFIXES = ["/v1/completions", "/completions"];

class Violation extends Error {}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        reject(new Violation(`request body over ${MAX_REQUEST_BYTES} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function valueAt(value: unknown, path: string[]): unknown {
  let current = value;
  for (const key of path) current = current && typeof current === "object" ? (current as Record<string, unknown>)[key] : undefined;
  return current;
}

function sendJson(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers });
  response.end(body);
}

/** Splits `{model}{suffix}` where the model id may itself contain slashes. */
function splitModelPath(rest: string): { model: string; suffix: string } {
  for (const suffix of [...CHAT_SUFFIXES, ...COMPLETION_SUFFIXES]) {
    if (rest.endsWith(suffix)) return { model: rest.slice(0, -suffix.length), suffix };
  }
  const pipeline = rest.indexOf("/pipeline/");
  if (pipeline >= 0) return { model: rest.slice(0, pipeline), suffix: rest.slice(pipeline) };
  return { model: rest, suffix: "" };
}

export async function startHfWireServer(options: WireServerOptions = {}): Promise<WireServer> {
  const validator = new SpecValidator();
  const models = new Map<string, string>(Object.entries(options.models ?? {}));
  const behaviours = new Map<string, WireBehaviour>();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let connectionCount = 0;

  function takeFault(model: string | undefined): WireBehaviour | undefined {
    if (!model) return undefined;
    const behaviour = behaviours.get(model);
    if (!behaviour) return undefined;
    if (behaviour.times !== undefined) {
      behaviour.times -= 1;
      if (behaviour.times <= 0) behaviours.delete(model);
    }
    return behaviour;
  }

  /** The Hub's model info with its provider mapping (the object form the Hub has long used). */
  function handleHub(request: IncomingMessage, response: ServerResponse, url: URL, record: RecordedRequest): void {
    const model = decodeURIComponent(url.pathname.slice("/api/models/".length));
    record.model = model;
    if (!url.searchParams.getAll("expand[]").includes("inferenceProviderMapping")) {
      record.violations.push(`hub lookup for ${model} without expand[]=inferenceProviderMapping`);
    }
    const task = models.get(model);
    if (!task) {
      record.status = 404;
      sendJson(response, 404, { error: "Repository not found" });
      return;
    }
    record.status = 200;
    sendJson(response, 200, {
      _id: `id-${model}`,
      id: model,
      inferenceProviderMapping: { "hf-inference": { status: "live", providerId: model, task } },
    });
  }

  async function sendFault(response: ServerResponse, behaviour: WireBehaviour, model: string, request: IncomingMessage, normal: () => Promise<void>): Promise<void> {
    const retryAfter: Record<string, string> = behaviour.retryAfterSeconds === undefined ? {} : { "retry-after": String(behaviour.retryAfterSeconds) };
    switch (behaviour.fail) {
      case "503-loading":
        return sendJson(response, 503, { error: `Model ${model} is currently loading`, estimated_time: behaviour.estimatedTime ?? 20 }, retryAfter);
      case "500":
        return sendJson(response, behaviour.status ?? 500, { error: "Internal Server Error" }, retryAfter);
      case "429":
        return sendJson(response, 429, { error: "Rate limit reached. Please slow down." }, { "retry-after": String(behaviour.retryAfterSeconds ?? 1) });
      case "html": {
        const body = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>";
        response.writeHead(behaviour.status ?? 200, { "content-type": "text/html; charset=utf-8" });
        response.end(body);
        return;
      }
      case "truncated": {
        const body = JSON.stringify({ generated_text: "this answer was cut off in the middle of a str" });
        response.writeHead(behaviour.status ?? 200, { "content-type": "application/json" });
        response.end(body.slice(0, Math.floor(body.length / 2)));
        return;
      }
      case "huge": {
        response.writeHead(200, { "content-type": "application/json" });
        let remaining = behaviour.hugeBytes ?? 8 * 1024 * 1024;
        const chunk = Buffer.from("[" + "0.125,".repeat(10_922)); // ~64 KiB
        const pump = () => {
          while (remaining > 0 && !response.destroyed) {
            remaining -= chunk.length;
            if (!response.write(chunk)) return void response.once("drain", pump);
          }
          response.end();
        };
        response.on("error", () => {});
        pump();
        return;
      }
      case "slow": {
        const closed = new Promise<void>((resolve) => response.once("close", resolve));
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, behaviour.delayMs ?? 10_000))), closed]);
        clearTimeout(timer);
        if (!response.destroyed && !response.writableEnded) await normal();
        return;
      }
      case "wrong-shape":
        return sendJson(response, 200, { unexpected: ["shape"] });
      case "echo-token":
        return sendJson(response, behaviour.status ?? 500, { error: `Bad request. Request headers: authorization=${request.headers.authorization ?? ""}` });
      case "reset":
        request.socket.destroy();
        return;
    }
  }

  function chatAnswer(body: Record<string, unknown>, model: string, record: RecordedRequest) {
    const messages = body.messages as Array<{ role: string; content?: unknown }>;
    const tools = (body.tools ?? []) as Array<{ function: { name: string } }>;
    const choice = body.tool_choice as unknown;
    const namedTool = choice && typeof choice === "object" ? (choice as { function: { name: string } }).function.name : undefined;
    const callTool = tools.length > 0 && (choice === "required" || namedTool !== undefined);
    const words = chatAnswerText(messages, model).split(" ");
    const maxTokens = typeof body.max_tokens === "number" ? body.max_tokens : Infinity;
    const kept = words.slice(0, Math.max(1, Math.min(words.length, maxTokens)));
    const promptTokens = Math.ceil(JSON.stringify(messages).length / 4);
    const usage = { prompt_tokens: promptTokens, completion_tokens: kept.length, total_tokens: promptTokens + kept.length };
    const toolCall = callTool
      ? { id: "call_0", type: "function", function: { name: namedTool ?? tools[0]!.function.name, arguments: JSON.stringify({ echo: "yes" }) } }
      : undefined;
    const finishReason = toolCall ? "tool_calls" : kept.length < words.length ? "length" : "stop";
    record.task = "chat";
    record.body = body;
    // One token per word (with its leading space), as the text is streamed.
    const pieces = kept.map((word, index) => (index === 0 ? word : ` ${word}`));
    const alternatives = typeof body.top_logprobs === "number" ? body.top_logprobs : 0;
    const logprobs =
      body.logprobs === true
        ? pieces.map((token, index) => ({
            token,
            logprob: -(index + 1) / 8,
            top_logprobs: Array.from({ length: alternatives }, (_, rank) => ({ token: rank === 0 ? token : `${token}~${rank}`, logprob: -(index + 1) / 8 - rank })),
          }))
        : undefined;
    return { words: kept, pieces, usage, toolCall, finishReason, logprobs };
  }

  async function handleChat(response: ServerResponse, body: Record<string, unknown>, model: string, record: RecordedRequest, behaviour: WireBehaviour | undefined, request: IncomingMessage): Promise<void> {
    const answer = chatAnswer(body, model, record);
    const created = 1_700_000_000;
    const base = { id: "", created, model, system_fingerprint: "wire-server" };
    const normal = async () => {
      if (!body.stream) {
        const message = answer.toolCall
          ? { role: "assistant", tool_calls: [answer.toolCall] }
          : { role: "assistant", content: answer.words.join(" ") };
        const logprobs = answer.logprobs && !answer.toolCall ? { content: answer.logprobs } : null;
        const output = { ...base, object: "chat.completion", choices: [{ index: 0, message, finish_reason: answer.finishReason, logprobs }], usage: answer.usage };
        const problems = validator.check("chat-completion", "output", output);
        record.violations.push(...problems);
        record.status = problems.length ? 500 : 200;
        return sendJson(response, record.status, output);
      }
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const send = (chunk: Record<string, unknown>) => {
        record.violations.push(...validator.check("chat-completion", "stream_output", chunk));
        response.write(`data: ${JSON.stringify(chunk)}\n\n`);
      };
      const chunk = (delta: unknown, finishReason: string | null, logprobs: unknown = null) => ({
        ...base,
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta, finish_reason: finishReason, logprobs }],
      });
      if (answer.toolCall) {
        const { id, type, function: fn } = answer.toolCall;
        send(chunk({ role: "assistant", tool_calls: [{ index: 0, id, type, function: { name: fn.name, arguments: "" } }] }, null));
        send(chunk({ role: "assistant", tool_calls: [{ index: 0, id, type, function: { arguments: fn.arguments } }] }, null));
      } else {
        answer.pieces.forEach((piece, index) => send(chunk({ role: "assistant", content: piece }, null, answer.logprobs ? { content: [answer.logprobs[index]] } : null)));
      }
      if (behaviour?.fail === "truncated") {
        response.end(`data: {"id":"","choices":[{"index":0,"delta":{"role":"assis`);
        record.status = 200;
        return;
      }
      send(chunk({ role: "assistant", content: "" }, answer.finishReason));
      if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage) send({ ...base, object: "chat.completion.chunk", choices: [], usage: answer.usage });
      response.end("data: [DONE]\n\n");
      record.status = 200;
    };
    if (behaviour && !(behaviour.fail === "truncated" && body.stream)) {
      record.fault = behaviour.fail;
      record.status = behaviour.fail === "slow" ? 200 : 0;
      await sendFault(response, behaviour, model, request, normal);
      if (!record.status) record.status = response.statusCode;
      return;
    }
    if (behaviour) record.fault = behaviour.fail;
    await normal();
  }

  function handleCompletion(response: ServerResponse, body: Record<string, unknown>, model: string, record: RecordedRequest): void {
    record.task = "completions";
    record.body = body;
    const text = " and the story goes on.";
    const output = {
      id: "",
      object: "text_completion",
      created: 1_700_000_000,
      model,
      choices: [{ index: 0, text, finish_reason: "stop", logprobs: null }],
      usage: { prompt_tokens: Math.ceil(String(body.prompt).length / 4), completion_tokens: 5, total_tokens: Math.ceil(String(body.prompt).length / 4) + 5 },
    };
    const problems = validator.check("completions", "output", output);
    record.violations.push(...problems);
    record.status = problems.length ? 500 : 200;
    sendJson(response, record.status, output);
  }

  async function handleInference(
    request: IncomingMessage,
    response: ServerResponse,
    style: AddressingStyle,
    model: string,
    suffix: string,
    record: RecordedRequest,
    rawBody?: Buffer,
  ): Promise<void> {
    record.model = model;
    const raw = rawBody ?? (await readBody(request));
    record.bodyBytes = raw.length;
    const registered = models.get(model);
    if (!registered) {
      record.status = 404;
      return sendJson(response, 404, { error: `Model ${model} does not exist` });
    }
    const contentType = request.headers["content-type"] ?? "";
    const isJson = contentType.startsWith("application/json");
    let body: Record<string, unknown>;
    if (isJson) {
      try {
        body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      } catch {
        throw new Violation(`${model}: request body is not valid JSON`);
      }
    } else {
      // Binary tasks may send the raw bytes; the spec's `inputs` is then the body.
      body = { inputs: raw.toString("base64") };
    }

    // Which task's spec this request must satisfy.
    let task: string;
    if (CHAT_SUFFIXES.includes(suffix)) task = "chat";
    else if (COMPLETION_SUFFIXES.includes(suffix)) task = "completions";
    else if (suffix.startsWith("/pipeline/")) task = suffix.slice("/pipeline/".length);
    else task = registered;
    record.task = task;

    const compatible =
      task === registered ||
      (task === "chat" && (registered === "conversational" || registered === "text-generation")) ||
      (task === "completions" && (registered === "text-generation" || registered === "conversational")) ||
      (["feature-extraction", "sentence-similarity"].includes(task) && ["feature-extraction", "sentence-similarity"].includes(registered));
    if (!compatible) throw new Violation(`${model} serves ${registered}, but the request was addressed as ${task}`);

    const specName = task === "chat" ? "chat-completion" : task;
    const problems = validator.check(specName, "input", body);
    if (problems.length) throw new Violation(problems.join("; "));
    if (task === "chat" && style === "auto-router" && typeof body.model !== "string") throw new Violation("auto-router chat request without a model");

    const wire = TASK_WIRES[task];
    if (!isJson && (!wire || wire.binaryInputs.length === 0)) throw new Violation(`${task} takes JSON, got a ${contentType || "typeless"} body`);
    for (const binary of wire?.binaryInputs ?? []) {
      const value = valueAt(body, binary.path);
      const bytes = typeof value === "string" ? Buffer.from(value, "base64") : undefined;
      if (!bytes || bytes.toString("base64") !== value) throw new Violation(`${task}: ${binary.path.join(".")} is not base64`);
      const media = sniffMedia(bytes);
      if (media?.kind !== binary.kind) throw new Violation(`${task}: ${binary.path.join(".")} is not ${binary.kind} data`);
    }

    const behaviour = takeFault(model);
    if (task === "chat") return handleChat(response, body, model, record, behaviour, request);

    const normal = async () => {
      if (task === "completions") return handleCompletion(response, body, model, record);
      const answer = wire!.answer(body, model);
      const outputProblems = validator.check(wire!.spec, "output", answer.specOutput);
      record.violations.push(...outputProblems);
      record.status = outputProblems.length ? 500 : 200;
      if (outputProblems.length) return sendJson(response, 500, { error: "wire server produced an invalid answer" });
      response.writeHead(200, { "content-type": answer.wire.contentType, "content-length": answer.wire.body.length });
      response.end(answer.wire.body);
    };
    if (behaviour) {
      record.fault = behaviour.fail;
      await sendFault(response, behaviour, model, request, normal);
      if (!record.status) record.status = response.statusCode;
      return;
    }
    await normal();
  }

  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? "/", "http://wire.local");
    const record: RecordedRequest = {
      method: request.method ?? "GET",
      path: url.pathname,
      style: "unknown",
      authorization: request.headers.authorization,
      contentType: request.headers["content-type"],
      bodyBytes: 0,
      status: 0,
      receivedAt: Date.now(),
      violations: [],
    };
    requests.push(record);
    try {
      if (options.token && request.headers.authorization !== `Bearer ${options.token}`) {
        record.status = 401;
        return sendJson(response, 401, { error: "Invalid credentials in Authorization header" });
      }
      if (request.method === "GET" && url.pathname.startsWith("/api/models/")) {
        record.style = "hub";
        return handleHub(request, response, url, record);
      }
      if (request.method !== "POST") throw new Violation(`unexpected ${request.method} ${url.pathname}`);
      if (url.pathname.startsWith("/hf-inference/models/")) {
        record.style = "provider";
        const { model, suffix } = splitModelPath(decodeURIComponent(url.pathname.slice("/hf-inference/models/".length)));
        return await handleInference(request, response, "provider", model, suffix, record);
      }
      if (url.pathname.startsWith("/endpoints/")) {
        record.style = "endpoint";
        const { model, suffix } = splitModelPath(decodeURIComponent(url.pathname.slice("/endpoints/".length)));
        return await handleInference(request, response, "endpoint", model, suffix, record);
      }
      if (url.pathname === "/v1/chat/completions") {
        record.style = "auto-router";
        // The auto router reads the model from the body.
        const raw = await readBody(request);
        let model = "";
        try {
          model = String((JSON.parse(raw.toString("utf8")) as { model?: unknown }).model ?? "");
        } catch {
          // handleInference reports the malformed body.
        }
        return await handleInference(request, response, "auto-router", model, "/v1/chat/completions", record, raw);
      }
      throw new Violation(`no route for POST ${url.pathname}`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof Violation) record.violations.push(message);
      else record.violations.push(`wire server error: ${message}`);
      record.status = error instanceof Violation ? 400 : 500;
      if (!response.headersSent) sendJson(response, record.status, { error: message });
      else response.destroy();
    }
  });
  server.on("connection", (socket) => {
    connectionCount += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.address}:${address.port}`;

  return {
    url,
    endpointBase: `${url}/endpoints`,
    requests,
    violations: () => requests.flatMap((entry) => entry.violations),
    connections: () => connectionCount,
    addModel: (model, task) => void models.set(model, task),
    setBehaviour: (model, behaviour) => {
      if (behaviour) behaviours.set(model, { ...behaviour });
      else behaviours.delete(model);
    },
    reset: () => {
      requests.length = 0;
      behaviours.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
