/**
 * A SCRIPTED chat LLM for unit tests: answers each job with the next scripted
 * text (or error) and records the jobs it received. Not a model; named so
 * that no test can pass it off as one.
 */
import type { ChatJob, ErrorPayload, JobEvent } from "@switchboard/protocol";
import type { ChatLlm } from "../src/types.js";

export type ScriptedAnswer = string | { error: ErrorPayload } | ((job: ChatJob) => string);

export interface ScriptedLlm extends ChatLlm {
  jobs: ChatJob[];
}

export function scriptedLlm(answers: ScriptedAnswer[], options: { model?: string; grammarEnforced?: boolean } = {}): ScriptedLlm {
  const jobs: ChatJob[] = [];
  return {
    model: options.model ?? "scripted",
    grammarEnforced: options.grammarEnforced ?? false,
    jobs,
    async *submit(job: ChatJob): AsyncIterable<JobEvent> {
      jobs.push(job);
      const answer = answers.length > 1 ? answers.shift()! : answers[0];
      if (answer === undefined) throw new Error("the scripted LLM has no answer left");
      if (typeof answer === "object") {
        yield { type: "error", error: answer.error };
        return;
      }
      const text = typeof answer === "function" ? answer(job) : answer;
      yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 0 };
      // Two deltas, so streaming paths see more than one.
      const middle = Math.ceil(text.length / 2);
      if (text.length > 0) yield { type: "text-delta", index: 0, text: text.slice(0, middle) };
      if (text.length > middle) yield { type: "text-delta", index: 0, text: text.slice(middle) };
      yield { type: "finish", index: 0, finishReason: "stop", completionTokens: text.length };
    },
  };
}
