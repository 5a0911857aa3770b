/**
 * Gateway side: one submitted job while its request is open. Holds the
 * events read from the inbox until the route consumes them and decides which
 * attempt's events count.
 */
import type { ErrorPayload, JobEvent } from "@switchboard/protocol";
import type { EventBatch } from "./wire.js";

export type PendingPhase =
  /** Admitted and added; no attempt has said `accepted` yet. */
  | "queued"
  /** An attempt said `accepted`; its worker is watched. */
  | "running"
  /** The worker of the running attempt died before any output: a re-run may still serve it. */
  | "awaiting-rerun";

/** Error events the transport itself made (a worker lost, events lost, Redis gone, a deadline): not the job's own. */
export const transportErrors = new WeakSet<JobEvent>();

/** How long a worker held an `accepted` event before sending it (ms), so the job's start can be dated back. */
export const acceptedHeldMs = new WeakMap<JobEvent, number>();

export class PendingJob {
  phase: PendingPhase = "queued";
  /** The attempt whose output is delivered; set by the first output event seen. */
  owner: number | undefined;
  acceptedDelivered = false;
  outputDelivered = false;
  /** Set when the owning attempt's end marker arrived: the job is done on the worker side too. */
  completed = false;
  /** Worker of the latest attempt that said `accepted`. */
  worker: string | undefined;
  lastActivity = Date.now();
  acceptedAt: number | undefined;
  awaitingSince: number | undefined;
  readonly #nextSeq = new Map<number, number>();
  #buffer: JobEvent[] = [];
  #ended = false;
  #abandoned = false;
  #wake: (() => void) | undefined;

  constructor(
    readonly jobId: string,
    readonly model: string,
    readonly queueName: string,
  ) {}

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Applies one inbox batch. Returns an error payload when the batch shows
   * that events were lost (a gap in the attempt's sequence).
   */
  accept(batch: EventBatch, now: number): ErrorPayload | undefined {
    if (this.#ended) return undefined;
    const expected = this.#nextSeq.get(batch.attempt) ?? 0;
    if (batch.seq !== expected) {
      return {
        status: 502,
        type: "server_error",
        code: "events_lost",
        param: null,
        message: "Part of the response was lost between the worker and the gateway.",
      };
    }
    this.#nextSeq.set(batch.attempt, expected + 1);
    this.lastActivity = now;
    for (const event of batch.events) {
      if (event.type === "accepted") {
        if (this.owner === undefined || this.owner === batch.attempt) {
          this.phase = "running";
          this.worker = event.worker;
          this.awaitingSince = undefined;
          this.acceptedAt ??= now - (batch.heldMs ?? 0);
        }
        // One `accepted` per request: a re-run's is a duplicate (and would count prompt tokens twice).
        if (!this.acceptedDelivered) {
          this.acceptedDelivered = true;
          if (batch.heldMs) acceptedHeldMs.set(event, batch.heldMs);
          this.#push(event);
        }
        continue;
      }
      this.owner ??= batch.attempt;
      if (batch.attempt !== this.owner) continue;
      this.outputDelivered = true;
      this.#push(event);
    }
    if (batch.end && (this.owner === undefined || this.owner === batch.attempt)) {
      this.completed = true;
      this.#end();
    }
    return undefined;
  }

  /**
   * Ends the stream with an error event (a no-op once ended). `transport`:
   * the transport broke under the job (not so for its deadline, which the
   * worker would have reported the same way).
   */
  fail(error: ErrorPayload, transport = true): void {
    if (this.#ended) return;
    const event: JobEvent = { type: "error", error };
    if (transport) transportErrors.add(event);
    this.#push(event);
    this.#end();
  }

  /** The consumer went away: stop at once, dropping anything buffered. */
  abandon(): void {
    this.#abandoned = true;
    this.#end();
  }

  async *events(): AsyncGenerator<JobEvent> {
    for (;;) {
      if (this.#abandoned) return;
      if (this.#buffer.length > 0) {
        const batch = this.#buffer;
        this.#buffer = [];
        for (const event of batch) {
          if (this.#abandoned) return;
          yield event;
        }
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  #push(event: JobEvent): void {
    this.#buffer.push(event);
    this.#wake?.();
  }

  #end(): void {
    this.#ended = true;
    this.#wake?.();
  }
}
