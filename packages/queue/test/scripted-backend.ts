/**
 * A SCRIPTED backend for transport tests: it runs no model; each job's first
 * prompt (or first user message) names a script of predetermined events:
 *
 * - `echo:<n>`: accepted, n text deltas `t0 `, `t1 `..., finish.
 * - `slow:<ms>:<n>`: the same with a pause before each delta.
 * - `prefill:<ms>:<n>`: accepted, a pause with no output, then n fast deltas.
 * - `reject`: a single 400 error, before generation.
 * - `hang`: accepted, then nothing until the signal aborts.
 *
 * Every delta is tagged with `tag` (say, the worker's pid), so a test can tell
 * which attempt produced it. Aborting the signal ends the script at the next
 * step, the way an engine frees its sequence.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { toAbortSignal, type Backend, type Job, type JobContext, type JobEvent, type JobSignal, type ModelState } from "@switchboard/protocol";

export interface ScriptedRun {
  jobId: string;
  signal: JobSignal;
  finished: boolean;
}

export class ScriptedBackend implements Backend {
  readonly name = "scripted";
  readonly runs: ScriptedRun[] = [];

  constructor(
    readonly modelIds: string[],
    readonly tag = "",
  ) {}

  models(): string[] {
    return this.modelIds;
  }

  modelStates(): ModelState[] {
    return this.modelIds.map((id) => ({ id, state: "ready" as const }));
  }

  async *run(job: Job, context: JobContext): AsyncIterable<JobEvent> {
    const record: ScriptedRun = { jobId: job.id, signal: context.signal, finished: false };
    this.runs.push(record);
    try {
      yield* this.#script(job, context.signal);
    } finally {
      record.finished = true;
    }
  }

  async close(): Promise<void> {}

  async *#script(job: Job, signal: JobSignal): AsyncGenerator<JobEvent> {
    const command = scriptOf(job);
    const [name = "", first = "0", second = "0"] = command.split(":");
    if (name === "reject") {
      yield { type: "error", error: { status: 400, type: "invalid_request_error", code: "scripted_rejection", param: "prompt", message: "Rejected by script." } };
      return;
    }
    yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: command.length };
    if (name === "hang") {
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      return;
    }
    const pauseMs = name === "slow" || name === "prefill" ? Number(first) : 0;
    const count = Number(name === "echo" ? first : second);
    if (name === "prefill") await abortableSleep(pauseMs, signal);
    for (let index = 0; index < count; index++) {
      if (signal.aborted) return;
      if (name === "slow") await abortableSleep(pauseMs, signal);
      if (signal.aborted) return;
      yield { type: "text-delta", index: 0, text: `${this.tag}t${index} ` };
    }
    yield { type: "finish", index: 0, finishReason: "length", completionTokens: count };
  }
}

function scriptOf(job: Job): string {
  if (job.kind === "completion") return job.prompts[0] ?? "";
  if (job.kind === "chat") return job.messages.at(-1)?.content ?? "";
  if (job.kind === "embedding") return job.input[0] ?? "";
  if (job.kind === "task") return job.task;
  return "orchestration";
}

async function abortableSleep(ms: number, signal: JobSignal): Promise<void> {
  await sleep(ms, undefined, { signal: toAbortSignal(signal) }).catch(() => undefined);
}
