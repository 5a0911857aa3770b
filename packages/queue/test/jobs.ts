import { randomUUID } from "node:crypto";
import type { CompletionJob, JobEvent } from "@switchboard/protocol";

export const TEST_MODEL = "scripted-model";

/** A completion job whose prompt is a script for the scripted backend. */
export function scriptJob(script: string, overrides: Partial<CompletionJob> = {}): CompletionJob {
  return {
    kind: "completion",
    id: `job-${randomUUID()}`,
    requestId: `req-${randomUUID().slice(0, 8)}`,
    model: TEST_MODEL,
    prompts: [script],
    maxTokens: 16,
    sampling: {},
    stop: [],
    ...overrides,
  };
}

export async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const all: JobEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

export function textOf(events: JobEvent[]): string {
  return events.map((event) => (event.type === "text-delta" ? event.text : "")).join("");
}

export function errorOf(events: JobEvent[]): Extract<JobEvent, { type: "error" }>["error"] | undefined {
  const event = events.find((candidate) => candidate.type === "error");
  return event?.type === "error" ? event.error : undefined;
}
