/**
 * The gateway side of the specialist routes, with a scripted engine: the
 * OpenAPI document, artifact links in both directions, uploads (into the
 * store, over the limit), and the gateway without an artifact store. The
 * routes against the real Hugging Face engine are in
 * `apps/embedded/test/hf-specialists.test.ts`.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { ArtifactUrlSigner, MemoryArtifactStore } from "@switchboard/artifacts";
import { Catalog, type HfModelConfig, type SwitchboardConfig } from "@switchboard/catalog";
import { Registry } from "@switchboard/metrics";
import { TASK_NAMES, type Job, type JobEvent, type TaskJob } from "@switchboard/protocol";
import { InProcessDispatcher } from "@switchboard/queue";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../test/gateway-harness.js";
import { ScriptedBackend } from "../test/scripted-backend.js";
import { buildGateway } from "./gateway.js";

/** A 1x1 PNG. */
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABc3UBGAAAAABJRU5ErkJggg==", "base64");

const remote = (id: string, task: HfModelConfig["task"]): HfModelConfig => ({
  id,
  aliases: [],
  backend: "hf",
  model: `acme/${id}`,
  task,
  timeoutMs: 1000,
  modalities: { in: ["text"], out: ["image"] },
});

function configWith(bodyLimitBytes = 64 * 1024): SwitchboardConfig {
  const base = testConfig({ server: { bodyLimitBytes } });
  return { ...base, models: [...base.models, remote("painter", "text-to-image"), remote("viewer", "image-classification")] };
}

/** The engine answers text-to-image with an inline PNG (no store of its own) and records what it got. */
function engine(config: SwitchboardConfig): ScriptedBackend {
  return new ScriptedBackend({
    models: config.models.map((model) => model.id),
    script: function* (job: Job): Iterable<JobEvent> {
      yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 0 };
      const task = job as TaskJob;
      if (task.task === "text-to-image") {
        yield { type: "task-result", task: "text-to-image", model: job.model, output: { image: { type: "base64", mimeType: "image/png", data: PNG.toString("base64"), bytes: PNG.length } } };
      } else {
        yield { type: "task-result", task: "image-classification", model: job.model, output: [{ label: "dot", score: 1 }] };
      }
    },
  });
}

async function gatewayWith(options: { artifacts: boolean; bodyLimitBytes?: number }) {
  const config = configWith(options.bodyLimitBytes);
  const backend = engine(config);
  const dispatcher = new InProcessDispatcher({ backends: [backend] });
  const store = new MemoryArtifactStore({ ttlSeconds: 60, maxBytes: 1024 * 1024, maxTotalBytes: 4 * 1024 * 1024 });
  const app = await buildGateway({
    config,
    catalog: new Catalog(config),
    dispatcher,
    metricsRegistry: new Registry(),
    ...(options.artifacts ? { artifacts: { store, signer: new ArtifactUrlSigner(), urlTtlSeconds: 30 } } : {}),
  });
  return { app, backend, store, close: async () => (await app.close(), await dispatcher.close()) };
}

describe("with an artifact store", () => {
  let gateway: Awaited<ReturnType<typeof gatewayWith>>;
  let baseURL: string;
  beforeAll(async () => {
    gateway = await gatewayWith({ artifacts: true });
    baseURL = await gateway.app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(() => gateway.close());

  it("documents every task route (JSON and multipart), the image, audio and artifact routes, in a valid OpenAPI 3.1 document", async () => {
    const document = (await gateway.app.inject({ method: "GET", url: "/openapi.json" })).json();
    const result = await new Validator().validate(document);
    expect(result.errors ?? []).toEqual([]);
    for (const task of TASK_NAMES) {
      const operation = document.paths[`/v1/tasks/${task}`]?.post;
      expect(operation, task).toBeDefined();
      expect(Object.keys(operation.requestBody.content)).toEqual(["application/json", "multipart/form-data"]);
      expect(JSON.stringify(operation)).toContain("TaskResponse");
      expect(operation.security).toEqual([{ bearerAuth: [] }]);
    }
    expect(document.paths["/v1/tasks/{task}"]).toBeUndefined();
    expect(JSON.stringify(document.paths["/v1/images/generations"].post)).toContain("#/components/schemas/CreateImageRequest");
    expect(JSON.stringify(document.paths["/v1/audio/speech"].post)).toContain("#/components/schemas/CreateSpeechRequest");
    expect(Object.keys(document.paths["/v1/audio/transcriptions"].post.requestBody.content)).toEqual(["multipart/form-data"]);
    expect(document.paths["/v1/artifacts/{id}"].get.security).toBeUndefined();
    expect(document.components.schemas.TextToImageTaskRequest.properties.response_format).toBeDefined();
  });

  it("stores an engine's inline output and answers with a URL that serves it", async () => {
    const response = await fetch(`${baseURL}/v1/tasks/text-to-image`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"inputs":"a dot"}' });
    const body = (await response.json()) as any;
    expect(body.output.image).toMatchObject({ type: "artifact", mimeType: "image/png", bytes: PNG.length });
    const image = await fetch(body.output.image.url);
    expect(image.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await image.arrayBuffer()).equals(PNG)).toBe(true);
    const head = await fetch(body.output.image.url, { method: "HEAD" });
    expect(head.status).toBe(200);
  });

  it("puts uploads in the store and sends the engine a reference, not the bytes", async () => {
    const form = new FormData();
    form.set("inputs", new Blob([PNG], { type: "image/png" }), "dot.png");
    const response = await fetch(`${baseURL}/v1/tasks/image-classification`, { method: "POST", body: form });
    expect(response.status).toBe(200);
    const job = gateway.backend.jobs.at(-1) as TaskJob;
    expect(job.inputs).toEqual({ type: "artifact", id: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await gateway.store.get((job.inputs as { id: string }).id))?.data).toEqual(new Uint8Array(PNG));
  });

  it("answers an upload over the body limit with a 413 the client reads, on a connection that stays usable", async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const form = new FormData();
      form.set("inputs", new Blob([Buffer.alloc(512 * 1024, 7)], { type: "image/png" }), "big.png");
      const response = await fetch(`${baseURL}/v1/tasks/image-classification`, { method: "POST", body: form });
      expect(response.status).toBe(413);
      expect(((await response.json()) as any).error.code).toBe("request_too_large");
    }
  });

  it("refuses a form whose parameters are not JSON, naming the field", async () => {
    const form = new FormData();
    form.set("inputs", new Blob([PNG], { type: "image/png" }), "dot.png");
    form.set("parameters", "{not json");
    const response = await fetch(`${baseURL}/v1/tasks/image-classification`, { method: "POST", body: form });
    expect(response.status).toBe(400);
    expect(((await response.json()) as any).error.param).toBe("parameters");
  });
});

describe("without an artifact store", () => {
  let gateway: Awaited<ReturnType<typeof gatewayWith>>;
  beforeAll(async () => {
    gateway = await gatewayWith({ artifacts: false });
  });
  afterAll(() => gateway.close());

  it("answers inline by default, refuses `url`, and has no artifact route", async () => {
    const inline = await gateway.app.inject({ method: "POST", url: "/v1/tasks/text-to-image", payload: { inputs: "a dot" } });
    expect(inline.json().output.image.type).toBe("base64");
    const url = await gateway.app.inject({ method: "POST", url: "/v1/tasks/text-to-image", payload: { inputs: "a dot", response_format: "url" } });
    expect(url.statusCode).toBe(400);
    expect(url.json().error.code).toBe("unsupported_response_format");
    const images = await gateway.app.inject({ method: "POST", url: "/v1/images/generations", payload: { prompt: "a dot", response_format: "b64_json" } });
    expect(Buffer.from(images.json().data[0].b64_json, "base64").equals(PNG)).toBe(true);
    expect((await gateway.app.inject({ method: "GET", url: `/v1/artifacts/${"a".repeat(64)}` })).statusCode).toBe(404);
  });
});

