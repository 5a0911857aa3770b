/**
 * Every upstream fault the engine owns, injected by the wire server and seen
 * through the real client: loading, 5xx with retries, Retry-After, 429,
 * timeouts, HTML, truncated JSON, huge bodies, wrong shapes, a body that
 * echoes the token, broken streams, and the circuit breaker.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TEST_WAV } from "@switchboard/hf-wire-server";
import { GatewayError } from "@switchboard/protocol";
import { HfEngine } from "./hf-engine.js";
import type { HfModelConfig, HuggingFaceSettings } from "./hf-settings.js";
import { CallCancelledError } from "./upstream-errors.js";
import { captureLogger, endpointId, hubModel, modelEntry, providerId, startWireFixture, TEST_TOKEN, type WireFixture } from "./test-support.js";

let fixture: WireFixture;
const logger = captureLogger();
const errors: unknown[] = [];

beforeAll(async () => {
  fixture = await startWireFixture();
});
afterEach(() => fixture.server.reset());
afterAll(async () => {
  await fixture?.server.close();
});

function engineWith(settings: Partial<HuggingFaceSettings> = {}, models: HfModelConfig[] = fixture.models) {
  return new HfEngine({ settings: { ...fixture.settings, ...settings }, models, logger });
}

/** Runs a call that must fail and returns its error (kept for the token check at the end). */
async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    errors.push(error);
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("the call succeeded");
}

const classify = (engine: HfEngine, id = providerId("text-classification")) => engine.runTask(id, "text-classification", "nice", undefined, { logger });
const inferenceRequests = (model: string) => fixture.server.requests.filter((request) => request.model === model && request.style !== "hub");
const CLASSIFIER = hubModel("text-classification", "p");

describe("a model that is loading", () => {
  it.each([
    ["provider", providerId("text-classification"), CLASSIFIER],
    ["endpoint", endpointId("text-classification"), hubModel("text-classification", "e")],
  ])("becomes our 503 with Retry-After from estimated_time, at once (%s)", async (_style, id, model) => {
    fixture.server.setBehaviour(model, { fail: "503-loading", estimatedTime: 12.3 });
    const engine = engineWith();
    const error = await failure(classify(engine, id));
    expect(error).toMatchObject({ status: 503, code: "model_unavailable", retryAfterSeconds: 13 });
    expect(error.message).toContain(`'${id}'`);
    // The client alone would retry this forever; the engine asks once.
    expect(inferenceRequests(model)).toHaveLength(1);
    expect(engine.modelState(id).state).toBe("loading");
  });

  it("never opens the circuit", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "503-loading", estimatedTime: 1 });
    const engine = engineWith({ circuitFailureThreshold: 2 });
    for (let i = 0; i < 4; i++) await failure(classify(engine));
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(4);
  });
});

describe("server errors", () => {
  it("are retried, then become a 502 that names the model", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "500" });
    const error = await failure(classify(engineWith({ retries: 2 })));
    expect(error).toMatchObject({ status: 502, code: "upstream_error", type: "server_error" });
    expect(error.message).toBe("The model 'p-text-classification' failed upstream: upstream answered HTTP 500 (3 attempts).");
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(3);
  });

  it("recover when a retry succeeds", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "500", times: 2 });
    expect(await classify(engineWith({ retries: 2 }))).toHaveLength(2);
    expect(inferenceRequests(CLASSIFIER).map((request) => request.status)).toEqual([500, 500, 200]);
  });

  it("are retried after Retry-After, not sooner", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "500", times: 1, retryAfterSeconds: 1 });
    await classify(engineWith({ retries: 1 }));
    const [first, second] = inferenceRequests(CLASSIFIER);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(950);
  });

  it("connection resets are retried", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "reset", times: 1 });
    expect(await classify(engineWith({ retries: 1 }))).toHaveLength(2);
  });

  it("a 429 whose Retry-After does not fit the budget is answered at once as 503 with that Retry-After", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "429", retryAfterSeconds: 30 });
    const started = Date.now();
    const error = await failure(classify(engineWith({ retries: 3 })));
    expect(error).toMatchObject({ status: 503, code: "upstream_rate_limited", retryAfterSeconds: 30 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(1);
  });

  it("a Hub that does not know the model is a 502, not the client's message", async () => {
    const engine = engineWith({}, [modelEntry("ghost", "text-classification", "acme/not-on-the-hub")]);
    const error = await failure(classify(engine, "ghost"));
    expect(error).toMatchObject({ status: 502, code: "upstream_error" });
    expect(error.message).toMatch(/'ghost'.*Hub does not know/);
  });
});

describe("time", () => {
  it("a model slower than its timeout is a 504 within the budget", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "slow", delayMs: 5_000 });
    const models = fixture.models.map((model) => (model.id === providerId("text-classification") ? { ...model, timeoutMs: 300 } : model));
    const started = Date.now();
    const error = await failure(classify(engineWith({}, models)));
    expect(error).toMatchObject({ status: 504, code: "upstream_timeout", type: "timeout_error" });
    expect(error.message).toBe("The model 'p-text-classification' did not answer within 300 ms.");
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it("a caller that goes away cancels the call", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "slow", delayMs: 5_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await expect(engineWith().runTask(providerId("text-classification"), "text-classification", "x", undefined, { signal: controller.signal })).rejects.toBeInstanceOf(
      CallCancelledError,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe("garbage is refused with a bounded read", () => {
  it.each([
    ["an HTML page", { fail: "html" as const }, /HTML page/],
    ["truncated JSON", { fail: "truncated" as const }, /malformed or truncated JSON/],
    ["a huge body", { fail: "huge" as const, hugeBytes: 64 * 1024 * 1024 }, /larger than 262144 bytes/],
    ["the wrong shape", { fail: "wrong-shape" as const }, /shape/],
  ])("%s", async (_name, behaviour, message) => {
    fixture.server.setBehaviour(CLASSIFIER, behaviour);
    const started = Date.now();
    const error = await failure(classify(engineWith({ maxResponseBytes: 256 * 1024 })));
    expect(error).toMatchObject({ status: 502, code: "upstream_bad_response" });
    expect(error.message).toMatch(message);
    expect(error.message).toContain("'p-text-classification'");
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(1);
  });

  it("an HTML page where an image is expected (the client would hand it over as a Blob)", async () => {
    fixture.server.setBehaviour(hubModel("text-to-image", "p"), { fail: "html" });
    const error = await failure(engineWith().runTask(providerId("text-to-image"), "text-to-image", "a cat", undefined));
    expect(error).toMatchObject({ status: 502, code: "upstream_bad_response" });
  });

  it("JSON where audio is expected (the client passes it through)", async () => {
    fixture.server.setBehaviour(hubModel("text-to-speech", "e"), { fail: "wrong-shape" });
    const error = await failure(engineWith().runTask(endpointId("text-to-speech"), "text-to-speech", "hello", undefined));
    expect(error).toMatchObject({ status: 502, code: "upstream_bad_response" });
    expect(error.message).toMatch(/JSON where audio data was expected/);
  });

  it("a wrong shape the client does not check (speech recognition)", async () => {
    fixture.server.setBehaviour(hubModel("automatic-speech-recognition", "p"), { fail: "wrong-shape" });
    const error = await failure(engineWith().runTask(providerId("automatic-speech-recognition"), "automatic-speech-recognition", TEST_WAV.toString("base64"), undefined));
    expect(error).toMatchObject({ status: 502, code: "upstream_bad_response" });
  });
});

// Provider models' requests are built by the client, endpoint models' by the engine; both streams are read by the engine.
describe.each([
  ["provider", providerId("conversational"), hubModel("conversational", "p")],
  ["endpoint", endpointId("conversational"), hubModel("conversational", "e")],
])("streams (%s)", (_style, id, wireModel) => {
  const chat = (engine: HfEngine) => engine.chatCompletionStream(id, { messages: [{ role: "user", content: "hello" }] }, { logger });

  it("a loading model fails the first chunk with 503, before anything was streamed", async () => {
    fixture.server.setBehaviour(wireModel, { fail: "503-loading", estimatedTime: 5 });
    const error = await failure(chat(engineWith()).next());
    expect(error).toMatchObject({ status: 503, code: "model_unavailable", retryAfterSeconds: 5 });
  });

  it("a stream cut off in the middle of an event ends in a 502", async () => {
    fixture.server.setBehaviour(wireModel, { fail: "truncated" });
    const received: string[] = [];
    const error = await failure(
      (async () => {
        for await (const chunk of chat(engineWith())) received.push(chunk.choices[0]?.delta?.content ?? "");
      })(),
    );
    expect(received.length).toBeGreaterThan(0);
    expect(error).toMatchObject({ status: 502, code: "upstream_bad_response" });
  });

  it("an HTML page instead of an event stream is a 502", async () => {
    fixture.server.setBehaviour(wireModel, { fail: "html" });
    const error = await failure(chat(engineWith()).next());
    expect(error).toMatchObject({ status: 502, code: "upstream_bad_response" });
  });
});

describe("the circuit breaker", () => {
  it("takes a failing model out of rotation and probes it back", async () => {
    const engine = engineWith({ retries: 0, circuitFailureThreshold: 2, circuitCoolDownMs: 150 });
    const id = providerId("text-classification");
    fixture.server.setBehaviour(CLASSIFIER, { fail: "500" });
    for (let i = 0; i < 2; i++) expect(await failure(classify(engine))).toMatchObject({ status: 502 });
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(2);

    // Open: refused without a request.
    const open = await failure(classify(engine));
    expect(open).toMatchObject({ status: 503, code: "model_unavailable" });
    expect(open.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(open.message).toContain(`'${id}'`);
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(2);
    expect(engine.modelState(id).state).toBe("failed");

    // Half-open: one probe; it fails, so the circuit opens again.
    await new Promise((resolve) => setTimeout(resolve, 160));
    expect(await failure(classify(engine))).toMatchObject({ status: 502 });
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(3);
    expect(await failure(classify(engine))).toMatchObject({ status: 503 });
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(3);

    // The model recovers: the next probe closes the circuit.
    fixture.server.setBehaviour(CLASSIFIER, null);
    await new Promise((resolve) => setTimeout(resolve, 160));
    expect(await classify(engine)).toHaveLength(2);
    expect(await classify(engine)).toHaveLength(2);
    expect(engine.modelState(id).state).toBe("ready");
    expect(inferenceRequests(CLASSIFIER)).toHaveLength(5);
  });
});

describe("the token", () => {
  it("is not echoed when an upstream error body carries it", async () => {
    fixture.server.setBehaviour(CLASSIFIER, { fail: "echo-token", status: 500 });
    const server = await failure(classify(engineWith({ retries: 0 })));
    expect(server).toMatchObject({ status: 502 });
    fixture.server.setBehaviour(CLASSIFIER, { fail: "echo-token", status: 400 });
    const rejected = await failure(classify(engineWith()));
    expect(rejected).toMatchObject({ status: 400, code: "upstream_rejected_input" });
    // The upstream really did echo it: the log line kept a redacted snippet.
    expect(logger.lines.some((line) => line.includes("authorization=Bearer [REDACTED]"))).toBe(true);
  });

  it("appears in no error message and no log line of this suite", () => {
    expect(errors.length).toBeGreaterThan(10);
    for (const error of errors) {
      expect(String((error as Error).message)).not.toContain(TEST_TOKEN);
      expect(JSON.stringify(error)).not.toContain(TEST_TOKEN);
    }
    expect(logger.lines.length).toBeGreaterThan(10);
    expect(logger.lines.join("\n")).not.toContain(TEST_TOKEN);
    expect(logger.lines.join("\n")).not.toContain(TEST_TOKEN.slice(3));
  });
});
