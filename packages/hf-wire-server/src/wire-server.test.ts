/**
 * The wire server must be able to say no: requests that break the
 * @huggingface/tasks specs are answered 400 and recorded as violations.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpecValidator } from "./spec-validator.js";
import { TEST_PNG, TEST_WAV } from "./task-wire.js";
import { startHfWireServer, type WireServer } from "./wire-server.js";

let server: WireServer;

beforeAll(async () => {
  server = await startHfWireServer({
    models: { "acme/classifier": "text-classification", "acme/vision": "image-classification", "acme/chat": "conversational" },
  });
});

afterAll(async () => {
  await server.close();
});

async function post(path: string, body: unknown, contentType = "application/json") {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": contentType },
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  return { status: response.status, record: server.requests.at(-1)! };
}

describe("the wire server checks requests against the specs", () => {
  it("accepts a request that follows the spec", async () => {
    const { status, record } = await post("/hf-inference/models/acme/classifier", { inputs: "great", parameters: { top_k: 1 } });
    expect(status).toBe(200);
    expect(record.violations).toEqual([]);
  });

  it.each([
    ["a number where the spec wants text", "/hf-inference/models/acme/classifier", { inputs: 5 }, /text-classification input/],
    ["an unknown enum value", "/hf-inference/models/acme/classifier", { inputs: "x", parameters: { function_to_apply: "tanh" } }, /function_to_apply/],
    ["a data URL where base64 is required", "/hf-inference/models/acme/vision", { inputs: `data:image/png;base64,${TEST_PNG.toString("base64")}` }, /not base64/],
    ["audio sent to an image task", "/endpoints/acme/vision", { inputs: TEST_WAV.toString("base64") }, /not image data/],
    ["a chat message without a role", "/hf-inference/models/acme/chat/v1/chat/completions", { messages: [{ content: "hi" }] }, /chat-completion input/],
    ["the wrong task for the model", "/hf-inference/models/acme/classifier/pipeline/feature-extraction", { inputs: "x" }, /serves text-classification/],
  ])("refuses %s", async (_name, path, body, problem) => {
    const { status, record } = await post(path, body);
    expect(status).toBe(400);
    expect(record.violations.join(" ")).toMatch(problem);
  });

  it("refuses raw bytes for a task that takes JSON", async () => {
    const { status, record } = await post("/hf-inference/models/acme/classifier", new Uint8Array(TEST_PNG), "image/png");
    expect(status).toBe(400);
    expect(record.violations.join(" ")).toMatch(/takes JSON/);
  });

  it("records a Hub lookup without the provider-mapping expansion as a violation", async () => {
    await fetch(`${server.url}/api/models/acme/vision`);
    expect(server.requests.at(-1)!.violations.join(" ")).toMatch(/expand\[\]=inferenceProviderMapping/);
    const good = await fetch(`${server.url}/api/models/acme/vision?expand[]=inferenceProviderMapping`);
    expect(await good.json()).toMatchObject({ inferenceProviderMapping: { "hf-inference": { task: "image-classification", status: "live" } } });
  });

  it("fails a model only as many times as asked", async () => {
    server.setBehaviour("acme/classifier", { fail: "500", times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post("/hf-inference/models/acme/classifier", { inputs: "x" })).status);
    expect(statuses).toEqual([500, 500, 200]);
  });
});

describe("the spec validator", () => {
  const validator = new SpecValidator();

  it("reads the specs @huggingface/tasks ships", () => {
    expect(validator.hasPublishedSpec("depth-estimation")).toBe(true);
    expect(validator.hasPublishedSpec("tabular-classification")).toBe(false);
  });

  it("finds wrong outputs", () => {
    expect(validator.check("text-classification", "output", [{ label: "x", score: 0.5 }])).toEqual([]);
    expect(validator.check("text-classification", "output", [{ label: 1 }]).length).toBeGreaterThan(0);
    expect(validator.check("object-detection", "output", [{ label: "cat", score: 1, box: { xmin: 0 } }]).length).toBeGreaterThan(0);
  });

  it("applies the image-to-text errata (the published spec requires a key it does not declare)", () => {
    expect(validator.check("image-to-text", "output", { generated_text: "a cat" })).toEqual([]);
  });
});
