/**
 * The router as a user reaches it: the embedded gateway over HTTP, the
 * generated tiny model (random weights, real llama.cpp) as planner, selector
 * and responder, and specialists on the local Hugging Face wire-format
 * server, which checks every request and answer against the
 * @huggingface/tasks specs. The official `openai` client drives the chat
 * route.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "@switchboard/catalog";
import { TEST_PNG, startHfWireServer, type WireServer } from "@switchboard/hf-wire-server";
import type { TaskName } from "@switchboard/protocol";
import { createEmbeddedServer, type EmbeddedServer } from "../src/embedded.js";

const PLANNER = "planner-tiny";
const TASKS: TaskName[] = ["image-to-text", "object-detection", "text-to-speech", "automatic-speech-recognition", "summarization", "translation"];
const PNG_URL = `data:image/png;base64,${TEST_PNG.toString("base64")}`;

let wire: WireServer;
let server: EmbeddedServer;
let baseUrl: string;
let modelsDir: string;
let client: OpenAI;

beforeAll(async () => {
  modelsDir = mkdtempSync(join(tmpdir(), "switchboard-router-"));
  // Two models per task, so the selector LLM has a choice to make.
  wire = await startHfWireServer({ models: Object.fromEntries(TASKS.flatMap((task) => [[`acme/${task}-a`, task], [`acme/${task}-b`, task]])) });
  const config = parseConfig(
    {
      server: { host: "127.0.0.1", port: 0, logLevel: "silent" },
      modelsDir,
      models: [
        { id: PLANNER, backend: "llama", source: "generated:tiny", contextSize: 4096, sequences: 4, defaultMaxTokens: 32 },
        ...TASKS.flatMap((task) =>
          (["a", "b"] as const).map((variant) => ({
            id: `${task}-${variant}`,
            backend: "hf",
            model: `acme/${task}-${variant}`,
            task,
            endpointUrl: `${wire.endpointBase}/acme/${task}-${variant}`,
            downloads: variant === "a" ? 5000 : 300,
            timeoutMs: 5000,
          })),
        ),
      ],
      huggingface: { baseUrl: wire.url, hubUrl: wire.url, retries: 0, circuitFailureThreshold: 100 },
      router: { planner: PLANNER, maxTasks: 4, aliases: ["hugginggpt"] },
    },
    { env: {}, baseDir: modelsDir },
  );
  server = await createEmbeddedServer({
    config,
    logger: pino({ level: "silent" }),
    orchestration: { literalMaxLength: 24, responder: { maxTokens: 24 }, selector: { maxTokens: 64 } },
  });
  await server.app.listen({ host: "127.0.0.1", port: 0 });
  const address = server.app.server.address() as { port: number };
  baseUrl = `http://127.0.0.1:${address.port}`;
  client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
  const state = await server.backend.whenReady(PLANNER);
  expect(state.state).toBe("ready");
}, 60_000);

afterEach(() => wire.reset());
afterAll(async () => {
  await server?.close();
  await wire?.close();
  rmSync(modelsDir, { recursive: true, force: true });
});

/** A JSON body as tests read it. */
const json = async (response: Response): Promise<any> => response.json();

const post = (path: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${baseUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

const describeAndRead = [
  {
    role: "user" as const,
    content: [
      { type: "text" as const, text: "Describe this picture, find the objects in it, and read the description aloud." },
      { type: "image_url" as const, image_url: { url: PNG_URL } },
    ],
  },
];

/** Two independent tasks on the image, and speech from the first one's text. */
const diamondPlan = [
  { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
  { id: 1, task: "object-detection", dep: [-1], args: { image: "<INPUT>-0" } },
  { id: 2, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } },
];

describe("the router model", () => {
  it("is listed as `router` and answers to its alias", async () => {
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toContain("router");
    expect((await client.models.retrieve("hugginggpt")).id).toBe("router");
    const embeddings = await post("/v1/embeddings", { model: "router", input: "x" });
    expect(embeddings.status).toBe(400);
    expect((await json(embeddings)).error).toMatchObject({ param: "model", code: "model_not_supported" });
  });

  it("streams a chat through the official client: progress as reasoning, then the answer, and the run is recorded", { timeout: 60_000 }, async () => {
    const stream = await client.chat.completions.create({ model: "hugginggpt", messages: describeAndRead, stream: true, stream_options: { include_usage: true } });
    let reasoning = "";
    let answer = "";
    let runId: string | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    const progressTypes: string[] = [];
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      reasoning += delta?.reasoning_content ?? "";
      answer += delta?.content ?? "";
      const progress = (chunk as unknown as { switchboard?: { progress: { type: string; runId: string } } }).switchboard?.progress;
      if (progress) {
        progressTypes.push(progress.type);
        runId = progress.runId;
      }
      if (chunk.usage) usage = chunk.usage;
      expect(chunk.model).toBe("router");
    }
    expect(progressTypes[0]).toBe("plan");
    expect(progressTypes).toContain("selection");
    expect(progressTypes).toContain("task-started");
    expect(progressTypes).toContain("task-finished");
    expect(reasoning).toMatch(/^Plan \(local\): 0\. /);
    expect(answer.length).toBeGreaterThan(0);
    // Tokens of every LLM call of the run: plan steps, selections, the answer.
    expect(usage!.prompt_tokens).toBeGreaterThan(0);
    expect(usage!.completion_tokens).toBeGreaterThan(0);

    const record = await json(await fetch(`${baseUrl}/v1/orchestrations/${runId}`));
    expect(record).toMatchObject({ object: "orchestration", id: runId, status: "completed", answer, dryRun: false });
    // The image was stored once as an artifact; the tasks got its reference.
    expect(record.inputs).toEqual([{ id: "<INPUT>-0", modality: "image", source: "image_url", mimeType: "image/png", artifactId: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: TEST_PNG.length }]);
    expect(record.plan.length).toBeGreaterThan(0);
    expect(record.selections).toHaveLength(record.plan.length);
    for (const selection of record.selections) expect(selection).toMatchObject({ model: expect.stringMatching(/-[ab]$/), reason: expect.any(String) });
    expect(record.tasks.map((task: { status: string }) => task.status)).toEqual(record.plan.map(() => "succeeded"));
    for (const key of ["planMs", "selectMs", "executeMs", "respondMs", "overheadMs"]) expect(record.timings[key]).toBeGreaterThanOrEqual(0);
    expect(wire.violations()).toEqual([]);

    // The console lists the run.
    const runs = await json(await fetch(`${baseUrl}/v1/console/runs`));
    expect(runs.data.map((run: { id: string }) => run.id)).toContain(runId);
  });

  it("answers a chat without streaming, with the progress as reasoning_content", { timeout: 60_000 }, async () => {
    const completion = await client.chat.completions.create({ model: "router", messages: [{ role: "user", content: "Summarise: the gateway routes requests to small models." }] });
    const message = completion.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
    expect(completion.object).toBe("chat.completion");
    expect(message.reasoning_content).toMatch(/^Plan|^No /);
    expect(typeof message.content).toBe("string");
    expect(completion.usage!.total_tokens).toBeGreaterThan(0);
  });

  it("refuses chat fields it cannot honour, naming them", async () => {
    const response = await post("/v1/chat/completions", { model: "router", messages: [{ role: "user", content: "hi" }], tools: [{ type: "function", function: { name: "f" } }] });
    expect(response.status).toBe(400);
    expect((await json(response)).error).toMatchObject({ param: "tools" });
  });
});

describe("/v1/orchestrations", () => {
  it("plans and selects on a dry run and executes nothing", { timeout: 60_000 }, async () => {
    const response = await post("/v1/orchestrations", { messages: describeAndRead, dry_run: true });
    expect(response.status).toBe(200);
    const run = await json(response);
    expect(run).toMatchObject({ object: "orchestration", status: "planned", dryRun: true, tasks: [], answer: "" });
    expect(run.plan.length).toBeGreaterThan(0);
    expect(run.selections).toHaveLength(run.plan.length);
    expect(wire.requests.filter((request) => request.style === "endpoint")).toEqual([]);
  });

  it("executes a client plan as a DAG: independent tasks overlap, the dependant waits for its input", { timeout: 60_000 }, async () => {
    // Slow enough that overlap cannot be an accident of timing.
    wire.setBehaviour("acme/image-to-text-a", { fail: "slow", delayMs: 300 });
    wire.setBehaviour("acme/object-detection-a", { fail: "slow", delayMs: 300 });
    const response = await post("/v1/orchestrations", { messages: describeAndRead, plan: diamondPlan });
    const run = await json(response);
    expect(run.status).toBe("completed");
    const [caption, detection, speech] = run.tasks;
    expect(run.tasks.map((task: { status: string }) => task.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect(detection.startedAt).toBeLessThan(caption.finishedAt);
    expect(caption.startedAt).toBeLessThan(detection.finishedAt);
    expect(speech.startedAt).toBeGreaterThanOrEqual(caption.finishedAt);
    expect(speech.inputs.text).toEqual({ reference: "<GENERATED>-0", value: caption.output.generated_text });
    // The request's image went to the tasks as one stored artifact, by reference.
    expect(caption.inputs.image).toEqual({ reference: "<INPUT>-0", value: { type: "artifact", id: run.inputs[0].artifactId } });
    expect(detection.inputs.image).toEqual(caption.inputs.image);
    expect(speech.artifacts).toEqual([expect.objectContaining({ path: "audio", mimeType: "audio/wav" })]);
    expect(run.planner).toMatchObject({ source: "client" });
    expect(wire.violations()).toEqual([]);
  });

  it("records a failed task and skips its dependants", { timeout: 60_000 }, async () => {
    for (const variant of ["a", "b"]) wire.setBehaviour(`acme/image-to-text-${variant}`, { fail: "500" });
    const run = await json(await post("/v1/orchestrations", { messages: describeAndRead, plan: diamondPlan }));
    expect(run.status).toBe("completed");
    expect(run.tasks.map((task: { status: string }) => task.status)).toEqual(["failed", "succeeded", "skipped"]);
    expect(run.tasks[0].error).toMatchObject({ message: expect.any(String) });
    expect(run.tasks[2].reason).toMatch(/0/);
    expect(wire.requests.some((request) => request.model === "acme/text-to-speech-a")).toBe(false);
  });

  it.each([
    ["a cycle", [{ id: 0, task: "summarization", dep: [1], args: { text: "<GENERATED>-1" } }, { id: 1, task: "translation", dep: [0], args: { text: "<GENERATED>-0" } }], /^plan\[0\]/],
    ["an unknown task", [{ id: 0, task: "mind-reading", dep: [-1], args: { text: "x" } }], /^plan\[0\]\.task$/],
    ["a dangling reference", [{ id: 0, task: "summarization", dep: [3], args: { text: "<GENERATED>-3" } }], /^plan\[0\]/],
    ["a wrong-modality reference", [{ id: 0, task: "text-to-speech", dep: [-1], args: { text: "x" } }, { id: 1, task: "image-to-text", dep: [0], args: { image: "<GENERATED>-0" } }], /^plan\[1\]\.args\.image$/],
    ["too many tasks", Array.from({ length: 5 }, (_, id) => ({ id, task: "summarization", dep: [-1], args: { text: "x" } })), /^plan\[4\]$/],
  ])("answers a client plan with %s as a 400 naming the bad node", async (_name, plan, param) => {
    const response = await post("/v1/orchestrations", { messages: [{ role: "user", content: "Do it." }], plan });
    expect(response.status).toBe(400);
    const { error } = await json(response);
    expect(error.type).toBe("invalid_request_error");
    expect(error.param).toMatch(param);
    expect(wire.requests).toEqual([]);
  });

  it("streams a run's events and ends with the record", { timeout: 60_000 }, async () => {
    const response = await post("/v1/orchestrations", { messages: describeAndRead, plan: diamondPlan.slice(0, 2), stream: true });
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const frames = (await response.text()).split("\n\n").filter((frame) => frame.startsWith("data: "));
    expect(frames.at(-1)).toBe("data: [DONE]");
    const events = frames.slice(0, -1).map((frame) => JSON.parse(frame.slice(6)));
    const types = events.map((event) => event.type);
    expect(types[0]).toBe("run-started");
    expect(types).toEqual(expect.arrayContaining(["plan", "selection", "task-started", "task-finished", "answer-delta", "run"]));
    expect(types.at(-1)).toBe("run");
    expect(events.at(-1).run).toMatchObject({ object: "orchestration", status: "completed", id: events[0].runId });
  });

  it("cancels the whole run when the client goes away", { timeout: 60_000 }, async () => {
    wire.setBehaviour("acme/image-to-text-a", { fail: "slow", delayMs: 20_000 });
    wire.setBehaviour("acme/image-to-text-b", { fail: "slow", delayMs: 20_000 });
    const client = new AbortController();
    const response = await post("/v1/orchestrations", { messages: describeAndRead, plan: [diamondPlan[0], { ...diamondPlan[2]!, id: 1 }], stream: true }, client.signal);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    let text = "";
    let runId = "";
    while (!text.includes('"task-started"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before a task started: ${text}`);
      text += new TextDecoder().decode(value);
      runId ||= /"runId":"([^"]+)"/.exec(text)?.[1] ?? "";
    }
    client.abort();
    let run: { status: string; tasks: { status: string }[] } | undefined;
    const deadline = Date.now() + 5_000;
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      run = await json(await fetch(`${baseUrl}/v1/orchestrations/${runId}`));
    } while (run!.status === "running" && Date.now() < deadline);
    expect(run!.status).toBe("cancelled");
    expect(run!.tasks.map((task) => task.status)).toEqual(["cancelled", "cancelled"]);
    expect(wire.requests.some((request) => request.model?.startsWith("acme/text-to-speech"))).toBe(false);
  });

  it("answers an unknown run id with a 404 that says why", async () => {
    const response = await fetch(`${baseUrl}/v1/orchestrations/run_nope`);
    expect(response.status).toBe(404);
    expect((await json(response)).error).toMatchObject({ code: "run_not_found", param: "id" });
  });

  it("publishes the orchestration routes and schemas in the OpenAPI document", async () => {
    const document = await json(await fetch(`${baseUrl}/openapi.json`));
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(["/v1/orchestrations", "/v1/orchestrations/{id}"]));
    expect(document.components.schemas).toHaveProperty("CreateOrchestrationRequest");
  });
});
