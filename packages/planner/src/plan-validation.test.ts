import { describe, expect, it } from "vitest";
import { GatewayError, TASK_NAMES } from "@switchboard/protocol";
import { assertValidPlan, deriveDep, parseReference, validatePlan } from "./plan-validation.js";
import { taskSignatures } from "./task-signatures.js";
import type { PlanProblem } from "./types.js";

const available = taskSignatures(TASK_NAMES);
const codes = (problems: PlanProblem[]) => problems.map((problem) => `${problem.param} ${problem.code}`);

const caption = { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } };
const speak = { id: 1, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } };
const image = [{ modality: "image" as const }];

describe("validatePlan", () => {
  it("accepts a valid chain, independent tasks, and the empty plan", () => {
    const detect = { id: 2, task: "object-detection", dep: [-1], args: { image: "<INPUT>-0" } };
    const edit = { id: 3, task: "image-to-image", dep: [-1], args: { image: "https://example.com/a.png" } };
    const answer = { id: 4, task: "question-answering", dep: [0, 2], args: { question: "<GENERATED>-2", context: "<GENERATED>-0" } };
    expect(validatePlan([caption, speak, detect, edit, answer], available, { inputs: image })).toEqual([]);
    expect(validatePlan([], available)).toEqual([]);
  });

  it("reports a cycle at the dependency that closes it", () => {
    const plan = [
      { id: 0, task: "summarization", dep: [1], args: { text: "<GENERATED>-1" } },
      { id: 1, task: "translation", dep: [0], args: { text: "<GENERATED>-0" } },
    ];
    expect(codes(validatePlan(plan, available))).toEqual(["plan[0].dep[0] cycle", "plan[0].args.text cycle"]);
    const self = [{ id: 0, task: "summarization", dep: [0], args: { text: "<GENERATED>-0" } }];
    expect(codes(validatePlan(self, available))).toEqual(["plan[0].dep[0] cycle", "plan[0].args.text cycle"]);
  });

  it("reports a forward reference that is not a cycle", () => {
    const plan = [
      { id: 0, task: "summarization", dep: [1], args: { text: "<GENERATED>-1" } },
      { id: 1, task: "translation", dep: [-1], args: { text: "hello" } },
    ];
    expect(codes(validatePlan(plan, available))).toEqual(["plan[0].dep[0] forward_dependency", "plan[0].args.text forward_reference"]);
  });

  it("reports an unknown task and a task without a live model", () => {
    const unknown = [{ id: 0, task: "make-coffee", dep: [-1], args: { text: "now" } }];
    expect(codes(validatePlan(unknown, available))).toEqual(["plan[0].task unknown_task"]);
    const onlyText = taskSignatures(["summarization"]);
    expect(codes(validatePlan([caption], onlyText, { inputs: image }))).toEqual(["plan[0].task unknown_task"]);
  });

  it("reports dangling references to tasks and inputs", () => {
    const plan = [{ id: 0, task: "summarization", dep: [3], args: { text: "<GENERATED>-3" } }];
    expect(codes(validatePlan(plan, available))).toEqual(["plan[0].dep[0] dangling_dependency", "plan[0].args.text dangling_reference"]);
    expect(codes(validatePlan([caption], available))).toEqual(["plan[0].args.image dangling_reference"]);
  });

  it("reports a reference to a task that does not produce the argument's modality", () => {
    const plan = [caption, { id: 1, task: "object-detection", dep: [0], args: { image: "<GENERATED>-0" } }];
    const problems = validatePlan(plan, available, { inputs: image });
    expect(codes(problems)).toEqual(["plan[1].args.image wrong_modality"]);
    expect(problems[0]!.message).toMatch(/produces text; 'image' takes image/);
    const audioInput = [{ modality: "audio" as const }];
    expect(codes(validatePlan([caption], available, { inputs: audioInput }))).toEqual(["plan[0].args.image wrong_modality"]);
  });

  it("reports dep that does not match the references", () => {
    const missing = [caption, { ...speak, dep: [-1] }];
    expect(codes(validatePlan(missing, available, { inputs: image }))).toEqual(["plan[1].args.text reference_not_in_dep"]);
    const extra = [caption, { id: 1, task: "summarization", dep: [0], args: { text: "a literal" } }];
    expect(codes(validatePlan(extra, available, { inputs: image }))).toEqual(["plan[1].dep[0] dependency_without_reference"]);
    const mixed = [caption, { ...speak, dep: [-1, 0] }];
    expect(codes(validatePlan(mixed, available, { inputs: image }))).toEqual(["plan[1].dep[0] invalid_dep"]);
  });

  it("reports too many tasks at the first one over the limit", () => {
    const plan = Array.from({ length: 4 }, (_, id) => ({ id, task: "summarization", dep: [-1], args: { text: `part ${id}` } }));
    expect(codes(validatePlan(plan, available, { maxTasks: 3 }))).toEqual(["plan[3] too_many_tasks"]);
    expect(validatePlan(plan.slice(0, 3), available, { maxTasks: 3 })).toEqual([]);
  });

  it("reports bad ids, shapes, arguments and references", () => {
    expect(codes(validatePlan({ tasks: [] }, available))).toEqual(["plan invalid_plan"]);
    expect(codes(validatePlan([{ ...caption, id: 4 }], available, { inputs: image }))).toEqual(["plan[0].id bad_id"]);
    expect(codes(validatePlan(["summarize"], available))).toEqual(["plan[0] invalid_task"]);
    expect(codes(validatePlan([{ id: 0, task: "summarization", dep: [-1], args: { text: "x", image: "y" } }], available))).toEqual(["plan[0].args.image unknown_argument"]);
    expect(codes(validatePlan([{ id: 0, task: "visual-question-answering", dep: [-1], args: { image: "<INPUT>-0" } }], available, { inputs: image }))).toEqual([
      "plan[0].args.text missing_argument",
    ]);
    expect(codes(validatePlan([{ id: 0, task: "summarization", dep: [-1], args: { text: 42 } }], available))).toEqual(["plan[0].args.text invalid_argument"]);
    expect(codes(validatePlan([{ id: 0, task: "summarization", dep: [-1], args: { text: "see <GENERATED>-1 below" } }], available))).toEqual([
      "plan[0].args.text malformed_reference",
    ]);
    expect(codes(validatePlan([{ id: 0, task: "summarization", dep: [], args: { text: "x" } }], available))).toEqual(["plan[0].dep invalid_dep"]);
    // Optional inputs may be left out.
    expect(validatePlan([{ id: 0, task: "image-to-image", dep: [-1], args: { image: "<INPUT>-0" } }], available, { inputs: image })).toEqual([]);
  });
});

describe("assertValidPlan", () => {
  it("throws a 400 whose param names the first bad node", () => {
    const plan = [caption, { id: 1, task: "object-detection", dep: [0], args: { image: "<GENERATED>-0" } }];
    let thrown: unknown;
    try {
      assertValidPlan(plan, available, { inputs: image });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GatewayError);
    expect(thrown).toMatchObject({ status: 400, type: "invalid_request_error", code: "invalid_plan", param: "plan[1].args.image" });
  });
});

describe("references", () => {
  it("parses whole-value references only and derives dep from them", () => {
    expect(parseReference("<GENERATED>-12")).toEqual({ kind: "generated", index: 12 });
    expect(parseReference("<INPUT>-0")).toEqual({ kind: "input", index: 0 });
    expect(parseReference("<GENERATED>-01")).toBeUndefined();
    expect(parseReference("x <GENERATED>-1")).toBeUndefined();
    expect(deriveDep({ a: "<GENERATED>-2", b: "<GENERATED>-0", c: "<INPUT>-0", d: "<GENERATED>-2" })).toEqual([0, 2]);
    expect(deriveDep({ a: "literal", b: "<INPUT>-1" })).toEqual([-1]);
  });
});
