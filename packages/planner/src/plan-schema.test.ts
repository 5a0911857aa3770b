import { describe, expect, it } from "vitest";
import { jsonSchemaToGbnf, limitsForSchema } from "@switchboard/llama";
import { TASK_NAMES } from "@switchboard/protocol";
import { DONE, buildPlanSchema, buildStepSchema, type StepContext } from "./plan-schema.js";
import { readStep } from "./planner.js";
import { taskSignatures } from "./task-signatures.js";
import type { PlanTask } from "./types.js";

const available = taskSignatures(TASK_NAMES);
const context = (extra: Partial<StepContext> = {}): StepContext => ({ available, chosen: [], inputs: [], mentions: [], literalMaxLength: 40, ...extra });
type Alternative = { properties: { task: { const: string }; args?: { properties: Record<string, unknown>; required: string[] } } };
const alternative = (schema: Record<string, unknown>, task: string) => (schema.anyOf as Alternative[]).find((entry) => entry.properties.task.const === task);

describe("step schema", () => {
  it("offers only tasks whose required inputs have a source, and done", () => {
    const step = buildStepSchema(context());
    expect(alternative(step.schema, DONE)).toBeDefined();
    expect(step.offered).toContain("summarization");
    expect(step.offered).toContain("text-to-image");
    // No image, audio or embedding anywhere yet: nothing that needs one is offered.
    for (const task of ["image-to-text", "object-detection", "automatic-speech-recognition", "visual-question-answering"]) expect(step.offered).not.toContain(task);
    // image-to-image needs an image; its text is optional.
    expect(step.offered).not.toContain("image-to-image");
  });

  it("offers image tasks once an input, a mention or an earlier output gives an image", () => {
    const withInput = buildStepSchema(context({ inputs: [{ id: "<INPUT>-0", modality: "image" }] }));
    expect(alternative(withInput.schema, "image-to-text")!.properties.args!.properties.image).toEqual({ enum: ["<INPUT>-0"] });
    const withMention = buildStepSchema(context({ mentions: [{ modality: "image", value: "https://example.com/cat.png" }] }));
    expect(alternative(withMention.schema, "object-detection")!.properties.args!.properties.image).toEqual({ enum: ["https://example.com/cat.png"] });
    const afterGeneration = buildStepSchema(context({ chosen: [{ id: 0, task: "text-to-image", dep: [-1], args: { text: "a cat" } }] }));
    expect(alternative(afterGeneration.schema, "image-to-text")!.properties.args!.properties.image).toEqual({ enum: ["<GENERATED>-0"] });
  });

  it("lets an argument reference only earlier tasks that produce its modality", () => {
    const chosen: PlanTask[] = [
      { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
      { id: 1, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } },
      { id: 2, task: "image-segmentation", dep: [-1], args: { image: "<INPUT>-0" } },
    ];
    const step = buildStepSchema(context({ chosen, inputs: [{ id: "<INPUT>-0", modality: "image" }] }));
    expect(alternative(step.schema, "summarization")!.properties.args!.properties.text).toEqual({
      anyOf: [{ type: "string", minLength: 1, maxLength: 40 }, { enum: ["<GENERATED>-0", "<GENERATED>-2"] }],
    });
    expect(alternative(step.schema, "audio-classification")!.properties.args!.properties.audio).toEqual({ enum: ["<GENERATED>-1"] });
    expect(alternative(step.schema, "depth-estimation")!.properties.args!.properties.image).toEqual({ enum: ["<INPUT>-0", "<GENERATED>-2"] });
  });

  it("compiles to a grammar with the llama engine's converter at every step shape", () => {
    const chosen = [
      { id: 0, task: "text-to-image", dep: [-1], args: { text: "a cat" } },
      { id: 1, task: "text-to-speech", dep: [-1], args: { text: "hello" } },
      { id: 2, task: "text-to-video", dep: [-1], args: { text: "waves" } },
      { id: 3, task: "feature-extraction", dep: [-1], args: { text: "x" } },
    ];
    for (let count = 0; count <= chosen.length; count++) {
      const { schema } = buildStepSchema(context({ chosen: chosen.slice(0, count), inputs: [{ id: "<INPUT>-0", modality: "audio" }] }));
      expect(jsonSchemaToGbnf(schema, limitsForSchema(schema, 600))).toMatch(/^root ::= /);
    }
    const whole = buildPlanSchema(available, 8);
    expect(jsonSchemaToGbnf(whole, limitsForSchema(whole, 2000))).toMatch(/^root ::= /);
  });
});

describe("readStep", () => {
  const step = buildStepSchema(context({ chosen: [{ id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } }], inputs: [{ id: "<INPUT>-0", modality: "image" }] }));

  it("derives dep from references and ends on done", () => {
    expect(readStep({ task: "text-to-speech", args: { text: "<GENERATED>-0" } }, 1, step)).toEqual({
      kind: "task",
      task: { id: 1, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } },
      neutralised: 0,
    });
    expect(readStep({ task: "done" }, 1, step)).toEqual({ kind: "done" });
  });

  it("neutralises literals that spell a reference the argument may not take", () => {
    const reading = readStep({ task: "summarization", args: { text: "<INPUT>-0" } }, 1, step);
    expect(reading).toEqual({ kind: "task", task: { id: 1, task: "summarization", dep: [-1], args: { text: "INPUT-0" } }, neutralised: 1 });
  });

  it("rejects what the grammar cannot produce", () => {
    expect(readStep({ task: "depth-estimation", args: { image: "<GENERATED>-0" } }, 1, step).kind).toBe("invalid");
    expect(readStep({ task: "make-coffee", args: {} }, 1, step).kind).toBe("invalid");
    expect(readStep({ task: "summarization", args: { text: "x", extra: "y" } }, 1, step).kind).toBe("invalid");
  });
});
