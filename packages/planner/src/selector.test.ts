import { describe, expect, it } from "vitest";
import { scriptedLlm } from "../test/scripted-llm.js";
import { orchestrationConfig } from "./orchestration.js";
import { rankCandidates, scoreCandidate, selectModels } from "./selector.js";
import type { CatalogCandidate, CatalogView, Plan } from "./types.js";

const candidate = (id: string, extra: Partial<CatalogCandidate> = {}): CatalogCandidate => ({ id, task: "image-to-text", backend: "hf", local: false, ...extra });
const view = (candidates: CatalogCandidate[]): CatalogView => ({ candidates: (task) => candidates.filter((entry) => entry.task === task) });
const plan: Plan = [
  { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
  { id: 1, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } },
  { id: 2, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-1" } },
];
const config = orchestrationConfig({ topK: 2 });
const options = (catalogView: CatalogView, llm = scriptedLlm(["{}"])) => ({
  plan,
  catalogView,
  llm,
  conversation: [{ role: "user" as const, content: "describe and read it" }],
  config,
  runId: "run",
  requestId: "request",
  signal: new AbortController().signal,
});

describe("ranking", () => {
  it("ranks by popularity, then penalises measured latency, errors and probing; drops open circuits", () => {
    const ranked = rankCandidates([
      candidate("popular", { downloads: 1_000_000, likes: 500 }),
      candidate("obscure", { downloads: 10 }),
      candidate("popular-but-slow", { downloads: 1_000_000, likes: 500, latencyMs: 30_000 }),
      candidate("popular-but-failing", { downloads: 1_000_000, likes: 500, errorRate: 0.8 }),
      candidate("broken", { downloads: 10_000_000, circuit: "open" }),
    ]);
    expect(ranked.map((entry) => entry.candidate.id)).toEqual(["popular", "popular-but-slow", "obscure", "popular-but-failing"]);
    expect(scoreCandidate(candidate("half", { downloads: 99, circuit: "half-open" }))).toBe(1);
  });
});

describe("selectModels", () => {
  it("asks the selector among the top k under a schema of their ids, and shares the choice between tasks of the same name", async () => {
    const llm = scriptedLlm(['{"model":"second","reason":"fits captions best"}']);
    const catalog = view([
      candidate("first", { downloads: 1000 }),
      candidate("second", { downloads: 100 }),
      candidate("third", { downloads: 10 }),
      candidate("voice", { task: "text-to-speech" }),
    ]);
    const selections = await selectModels(options(catalog, llm));
    expect(selections.map((selection) => [selection.taskId, selection.model, selection.byLlm])).toEqual([
      [0, "second", true],
      [1, "voice", false],
      [2, "second", true],
    ]);
    expect(selections[0]).toMatchObject({ reason: "fits captions best", fallbackModels: ["first"], candidates: [{ id: "first" }, { id: "second" }] });
    expect(selections[1]!.reason).toMatch(/only available model/);
    // One LLM call (image-to-text once; text-to-speech has one candidate), constrained to the top-k ids.
    expect(llm.jobs).toHaveLength(1);
    expect(llm.jobs[0]!.responseFormat).toMatchObject({ type: "json_schema", schema: { properties: { model: { enum: ["first", "second"] } } } });
  });

  it("takes the top-ranked model when the selector's answer is unusable or it fails", async () => {
    const catalog = view([candidate("first", { downloads: 1000 }), candidate("second"), candidate("voice", { task: "text-to-speech" })]);
    const unusable = await selectModels(options(catalog, scriptedLlm(['{"model":"elsewhere","reason":"x"}'])));
    expect(unusable[0]).toMatchObject({ model: "first", byLlm: false, reason: expect.stringMatching(/named no candidate/) });
    const failing = await selectModels(options(catalog, scriptedLlm([{ error: { status: 503, type: "service_unavailable_error", code: null, param: null, message: "busy" } }])));
    expect(failing[0]).toMatchObject({ model: "first", byLlm: false, reason: expect.stringMatching(/selector failed \(busy\)/) });
  });

  it("records no model when every candidate's circuit is open", async () => {
    const catalog = view([candidate("first", { circuit: "open" }), candidate("voice", { task: "text-to-speech" })]);
    const selections = await selectModels(options(catalog));
    expect(selections[0]).toMatchObject({ model: null, backend: null, reason: expect.stringMatching(/no model with a closed circuit/) });
  });
});
