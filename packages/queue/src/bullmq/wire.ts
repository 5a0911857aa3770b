/**
 * What crosses Redis between the gateway and a worker, besides BullMQ's own
 * bookkeeping: the job envelope (BullMQ job data) and event batches (entries
 * of the gateway's inbox stream). Both are plain JSON.
 */
import type { Job, JobEvent } from "@switchboard/protocol";

/** BullMQ job data. */
export interface JobEnvelope {
  /** Envelope version, so a newer gateway and an older worker can tell. */
  v: 1;
  job: Job;
  /** Stream key of the gateway inbox the events go to. */
  inbox: string;
  /** Approximate length bound workers apply when appending to the inbox. */
  inboxMaxLength: number;
  /** Epoch ms after which the gateway has given up: the job's own deadline or the gateway's default. */
  deadlineAt?: number;
}

/**
 * One inbox entry: a batch of events of one attempt of one job. Stream field
 * names are short because every entry carries them.
 */
export interface EventBatch {
  /** Job id (the gateway's). */
  jobId: string;
  /** Attempt number, from 1; a re-run after a stall is a new attempt. */
  attempt: number;
  /** Batch number within the attempt, from 0; a gap means entries were lost. */
  seq: number;
  events: JobEvent[];
  /** Set on the attempt's last batch. */
  end: boolean;
  /**
   * On an attempt's first batch: ms its first event waited on the worker
   * before this write (an `accepted` held for the first output), so the
   * gateway can date the job's start.
   */
  heldMs?: number;
}

export function encodeBatch(batch: EventBatch): string[] {
  const fields = ["j", batch.jobId, "a", String(batch.attempt), "s", String(batch.seq), "e", JSON.stringify(batch.events)];
  if (batch.end) fields.push("x", "1");
  if (batch.heldMs) fields.push("h", String(batch.heldMs));
  return fields;
}

/** Returns undefined for entries that are not batches (the inbox's own markers). */
export function decodeBatch(fields: string[]): EventBatch | undefined {
  let jobId: string | undefined;
  let attempt = 0;
  let seq = -1;
  let events: JobEvent[] = [];
  let end = false;
  let heldMs = 0;
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const value = fields[index + 1]!;
    switch (fields[index]) {
      case "j":
        jobId = value;
        break;
      case "a":
        attempt = Number(value);
        break;
      case "s":
        seq = Number(value);
        break;
      case "e":
        events = JSON.parse(value) as JobEvent[];
        break;
      case "x":
        end = value === "1";
        break;
      case "h":
        heldMs = Math.max(0, Number(value) || 0);
        break;
    }
  }
  if (jobId === undefined || !(attempt > 0) || !(seq >= 0)) return undefined;
  return heldMs > 0 ? { jobId, attempt, seq, events, end, heldMs } : { jobId, attempt, seq, events, end };
}

/** Whether an event is output (anything but `accepted`): the first one claims the job for its attempt. */
export function isOutput(event: JobEvent): boolean {
  return event.type !== "accepted";
}
