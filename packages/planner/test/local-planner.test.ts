/**
 * Validity by construction: the generated tiny model (random weights) plans
 * through the real LlamaBackend under the step grammars, and every plan it
 * makes validates. TaskBench requests come from ../shared/taskbench when that
 * optional data is present; the built-in requests with attachments always run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TASK_NAMES } from "@switchboard/protocol";
import {
  findMentions,
  makePlan,
  orchestrationConfig,
  prepareConversation,
  taskSignatures,
  validatePlan,
  type OrchestrationMessage,
  type Plan,
  type PlannerRecord,
} from "../src/index.js";
import { startTinyLlama, taskbenchSample, TASKBENCH_REQUESTS, type TinyLlama } from "./support.js";

const SAMPLE_SIZE = 32;
const sample = await taskbenchSample(SAMPLE_SIZE);
if (!sample) console.warn(`TaskBench data is absent (${TASKBENCH_REQUESTS}); the TaskBench planning test is skipped.`);

let tiny: TinyLlama;
beforeAll(async () => {
  tiny = await startTinyLlama({ sequences: 3 });
});
afterAll(async () => tiny?.close());

const available = taskSignatures(TASK_NAMES);
// Short literals and three tasks keep the suite fast; validity does not depend on either.
const config = orchestrationConfig({ maxTasks: 3, literalMaxLength: 24, fileNameMentions: true, planner: { maxTokens: 512, temperature: 0.8 } });

async function planFor(messages: OrchestrationMessage[], seed: number): Promise<{ plan: Plan; record: PlannerRecord; inputs: number }> {
  const prepared = prepareConversation(messages);
  const last = prepared.messages.at(-1)?.content ?? "";
  const { plan, record } = await makePlan({
    llm: tiny.llm,
    available,
    conversation: prepared.messages,
    inputs: prepared.inputs,
    mentions: findMentions(last, { fileNames: true }),
    config: { ...config, planner: { ...config.planner, seed } },
    runId: `plan-${seed}`,
    requestId: `plan-${seed}`,
    signal: new AbortController().signal,
  });
  expect(validatePlan(plan, available, { maxTasks: config.maxTasks, inputs: prepared.inputs })).toEqual([]);
  return { plan, record, inputs: prepared.inputs.length };
}

/** Runs `work` over `items` with at most `limit` in flight (one per model sequence). */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!, index);
      }
    }),
  );
  return results;
}

describe("local planner on the random-weight tiny model", () => {
  it.skipIf(!sample)(`plans for ${SAMPLE_SIZE} TaskBench requests all validate (optional data ../shared/taskbench)`, { timeout: 120_000 }, async () => {
    const results = await pool(sample!, 3, (request, index) => planFor([{ role: "user", content: request.text }], index));
    for (const { record } of results) {
      expect(record.rejectedSteps).toBe(0);
      expect(record.source).toBe("local");
    }
    const plans = results.map((result) => result.plan);
    // Not trivially valid: plans chain outputs and use the files the requests mention.
    expect(plans.some((plan) => plan.some((task) => task.dep[0] !== -1))).toBe(true);
    expect(plans.some((plan) => plan.some((task) => Object.values(task.args).some((value) => /\.(jpg|png|wav|mp4)$/.test(value))))).toBe(true);
    expect(plans.some((plan) => plan.length >= 2)).toBe(true);
  });

  it("plans that take attached images and audio by <INPUT>-n validate", { timeout: 60_000 }, async () => {
    const png = "data:image/png;base64,iVBORw0KGgo=";
    const requests: OrchestrationMessage[][] = [
      [{ role: "user", content: [{ type: "text", text: "What is in this picture? Then read the caption aloud." }, { type: "image_url", image_url: { url: png } }] }],
      [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } }, { type: "text", text: "Transcribe this and translate it to French." }] }],
      [{ role: "user", content: [{ type: "image_url", image_url: { url: png } }, { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } }] }],
    ];
    const results = await pool(requests, 3, (messages, index) => planFor(messages, 100 + index));
    const references = results.flatMap((result) => result.plan.flatMap((task) => Object.values(task.args))).filter((value) => value.startsWith("<INPUT>-"));
    expect(references.length).toBeGreaterThan(0);
  });
});
