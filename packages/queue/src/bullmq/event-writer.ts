/**
 * Worker side: appends one attempt's events to the gateway's inbox, in order.
 * Events produced while a write is in flight are coalesced into the next
 * write (adjacent text deltas of one choice become one delta), so a fast
 * decoder costs fewer Redis entries without any timer adding latency.
 */
import type { Redis } from "ioredis";
import { joinTextDeltas, type JobEvent } from "@switchboard/protocol";
import { claimOutputScript } from "./redis.js";
import { encodeBatch, isOutput } from "./wire.js";

/** Why a writer stopped accepting events. */
export type WriterStop =
  /** The request that made the job ended; nobody reads the events. */
  | "not-wanted"
  /** Another attempt of the same job already sent output. */
  | "superseded"
  /** The gateway's inbox is gone (the gateway stopped). */
  | "gateway-gone"
  /** Redis refused or timed out the write. */
  | "redis-error";

export interface EventWriterOptions {
  redis: Redis;
  inbox: string;
  stateKey: string;
  jobId: string;
  inboxMaxLength: number;
  /** Called once when the writer stops early, so the caller can abort the generation. */
  onStop: (reason: WriterStop, error?: unknown) => void;
}

export class EventWriter {
  readonly #options: EventWriterOptions;
  #pending: JobEvent[] = [];
  /** Set by {@link begin}; events wait until then. */
  #attempt: number | undefined;
  #seq = 0;
  /** The first batch went through the claim script: the job was still wanted and not another attempt's. */
  #checked = false;
  #claimed = false;
  #writing: Promise<void> | undefined;
  #ending = false;
  #ended = false;
  #stopped: WriterStop | undefined;
  /** Set while the attempt steps aside (see {@link stepAside}): nothing is written. */
  #held = false;
  /** Inbox entries written and events pushed, for metrics and tests. */
  entries = 0;
  events = 0;

  constructor(options: EventWriterOptions) {
    this.#options = options;
  }

  get stopped(): WriterStop | undefined {
    return this.#stopped;
  }

  /**
   * Sets the attempt number; events pushed before are held until then.
   */
  begin(attempt: number): void {
    if (this.#attempt !== undefined) return;
    this.#attempt = attempt;
    this.#kick();
  }

  /**
   * No more events will be pushed: the next write carries the end marker.
   * Called before {@link begin}, a job whose events are all in goes out in
   * one write, end marker included.
   */
  seal(): void {
    this.#ending = true;
  }

  push(event: JobEvent): void {
    if (this.#stopped) return;
    this.events++;
    const last = this.#pending.at(-1);
    if (event.type === "text-delta" && last?.type === "text-delta" && last.index === event.index) {
      this.#pending[this.#pending.length - 1] = joinTextDeltas(last, event);
    } else {
      this.#pending.push(event);
    }
    this.#kick();
  }

  /**
   * Writes what is left with the end marker and resolves when it is in Redis
   * (or the writer stopped). Call once, after the last push and after begin().
   */
  async end(): Promise<void> {
    this.seal();
    this.#kick();
    while (this.#writing) await this.#writing;
  }

  /**
   * For a worker shutting down: whether this attempt can hand its job to
   * another worker, which is so while none of its output reached the inbox
   * (the output claim is what makes an attempt's output the one delivered).
   * Waits for a write in flight. When it answers true the writer has dropped
   * what it held and writes nothing more until {@link resume}; when false,
   * it carries on.
   */
  async stepAside(): Promise<boolean> {
    this.#held = true;
    while (this.#writing) await this.#writing;
    if (this.#claimed || this.#stopped) {
      this.resume();
      return false;
    }
    this.#pending = [];
    return true;
  }

  /** Writes again after {@link stepAside} (the job could not be handed over after all). */
  resume(): void {
    this.#held = false;
    this.#kick();
  }

  stop(reason: WriterStop, error?: unknown): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    this.#pending = [];
    this.#options.onStop(reason, error);
  }

  #hasWork(): boolean {
    return !this.#stopped && !this.#ended && !this.#held && (this.#pending.length > 0 || this.#ending);
  }

  #kick(): void {
    if (this.#attempt === undefined || this.#writing || !this.#hasWork()) return;
    // Cleared (and re-kicked, for events pushed as the loop ended) only after the drain settles.
    this.#writing = this.#drain().finally(() => {
      this.#writing = undefined;
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    // Each pass takes everything pushed meanwhile. Nothing is pushed after end(), so once
    // ending, the batch taken is the last one and carries the end marker.
    while (this.#hasWork()) {
      const events = this.#pending;
      this.#pending = [];
      const end = this.#ending;
      await this.#write(events, end);
      if (end) this.#ended = true;
    }
  }

  async #write(events: JobEvent[], end: boolean): Promise<void> {
    const { redis, inbox, stateKey, jobId, inboxMaxLength } = this.#options;
    const attempt = this.#attempt!;
    const fields = encodeBatch({ jobId, attempt, seq: this.#seq, events, end });
    try {
      const output = !this.#claimed && events.some(isOutput);
      if (!this.#checked || output) {
        // The first batch (usually `accepted` alone) checks that the job is still wanted and not
        // superseded, so a discarded re-run stops at once; the first with output claims the output.
        const result = Number(await claimOutputScript.run(redis, [stateKey, inbox], [attempt, inboxMaxLength, end ? 1 : 0, output ? 1 : 0, ...fields]));
        if (result === -1) return this.stop("not-wanted");
        if (result === -2) return this.stop("superseded");
        if (result === -3) return this.stop("gateway-gone");
        this.#checked = true;
        if (output) this.#claimed = true;
      } else if (end && this.#claimed) {
        // The job is done: drop its "still wanted" key with the last entry, so a late re-run is discarded.
        const results = await redis.pipeline().xadd(inbox, "NOMKSTREAM", "MAXLEN", "~", inboxMaxLength, "*", ...fields).del(stateKey).exec();
        if (results?.[0]?.[1] === null) return this.stop("gateway-gone");
      } else {
        const id = await redis.xadd(inbox, "NOMKSTREAM", "MAXLEN", "~", inboxMaxLength, "*", ...fields);
        if (id === null) return this.stop("gateway-gone");
      }
      this.#seq++;
      this.entries++;
    } catch (error) {
      this.stop("redis-error", error);
    }
  }
}
