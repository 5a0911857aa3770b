/**
 * Worker side: appends one attempt's events to the gateway's inbox, in order.
 * Events produced while a write is in flight are coalesced into the next
 * write (adjacent text deltas of one choice become one delta), so a fast
 * decoder costs fewer Redis entries without any timer adding latency. Two
 * exceptions keep short jobs short: an `accepted` with nothing after it waits
 * a moment for the first output, so the two share one write, and the last
 * batch never waits for the write before it (both go out back to back on one
 * connection, which keeps their order).
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
  /**
   * How long an `accepted` with nothing after it waits for output to share its
   * write, in ms (default {@link ACCEPTED_HOLD_MS}); 0 writes it at once.
   */
  acceptedHoldMs?: number;
}

/**
 * Default wait of a lone `accepted` for the first output: long enough for a
 * short prompt's first token on a CPU, short against the heartbeat that
 * watches a running job's worker. The gateway learns how long it was held,
 * so queue wait times stay exact.
 */
export const ACCEPTED_HOLD_MS = 50;

export class EventWriter {
  readonly #options: EventWriterOptions;
  readonly #holdMs: number;
  #pending: JobEvent[] = [];
  /** `performance.now()` when the first event was pushed: the first batch says how long it waited. */
  #firstPushedAt: number | undefined;
  /** Set by {@link begin}; events wait until then. */
  #attempt: number | undefined;
  #seq = 0;
  /** A reply confirmed that the job was still wanted and not another attempt's. */
  #checked = false;
  /** A reply confirmed that this attempt owns the job's output. */
  #claimed = false;
  /** Writes sent and not answered yet. */
  readonly #writing = new Set<Promise<void>>();
  /** Claim-script writes among them: while one is unanswered, later writes must be checked the same way. */
  #unansweredChecks = 0;
  #holdTimer: NodeJS.Timeout | undefined;
  #holdOver = false;
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
    this.#holdMs = options.acceptedHoldMs ?? ACCEPTED_HOLD_MS;
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
    this.#firstPushedAt ??= performance.now();
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
    await this.#settled();
  }

  /**
   * For a worker shutting down: whether this attempt can hand its job to
   * another worker, which is so while none of its output reached the inbox
   * (the output claim is what makes an attempt's output the one delivered).
   * Waits for writes in flight. When it answers true the writer has dropped
   * what it held and writes nothing more until {@link resume}; when false,
   * it carries on.
   */
  async stepAside(): Promise<boolean> {
    this.#held = true;
    await this.#settled();
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
    clearTimeout(this.#holdTimer);
    this.#options.onStop(reason, error);
  }

  async #settled(): Promise<void> {
    while (this.#writing.size > 0) await Promise.all(this.#writing);
  }

  #hasWork(): boolean {
    return !this.#stopped && !this.#ended && !this.#held && (this.#pending.length > 0 || this.#ending);
  }

  /** An `accepted` alone, still within its hold: it waits for output (or the end) to share a write. */
  #holdingAccepted(): boolean {
    if (this.#holdOver || this.#ending || this.#pending.length !== 1 || this.#pending[0]!.type !== "accepted") return false;
    if (this.#holdMs <= 0) return false;
    this.#holdTimer ??= setTimeout(() => {
      this.#holdOver = true;
      this.#kick();
    }, this.#holdMs);
    return true;
  }

  #kick(): void {
    if (this.#attempt === undefined || !this.#hasWork()) return;
    // Coalesce while a write is in flight; only the last batch goes out at once behind it.
    if (this.#writing.size > 0 && !this.#ending) return;
    if (this.#holdingAccepted()) return;
    clearTimeout(this.#holdTimer);
    this.#holdOver = true;
    const events = this.#pending;
    this.#pending = [];
    const end = this.#ending;
    if (end) this.#ended = true;
    const write: Promise<void> = this.#write(events, end).finally(() => {
      this.#writing.delete(write);
      this.#kick();
    });
    this.#writing.add(write);
  }

  /** Sends one batch now (the command is on the connection before this returns) and handles the reply. */
  async #write(events: JobEvent[], end: boolean): Promise<void> {
    const { redis, inbox, stateKey, jobId, inboxMaxLength } = this.#options;
    const attempt = this.#attempt!;
    const seq = this.#seq++;
    const heldMs = seq === 0 && this.#firstPushedAt !== undefined ? Math.round(performance.now() - this.#firstPushedAt) : 0;
    const fields = encodeBatch({ jobId, attempt, seq, events, end, heldMs });
    try {
      const output = !this.#claimed && events.some(isOutput);
      if (!this.#checked || output || this.#unansweredChecks > 0) {
        // The first batch checks that the job is still wanted and not superseded, so a discarded
        // re-run stops at once; the first with output claims the output. A batch sent while such a
        // check is unanswered is checked too: a refusal is final, so no later batch gets through
        // after a refused one and the gateway never sees a gap.
        this.#unansweredChecks++;
        let result: number;
        try {
          result = Number(await claimOutputScript.runInOrder(redis, [stateKey, inbox], [attempt, inboxMaxLength, end ? 1 : 0, output ? 1 : 0, ...fields]));
        } finally {
          this.#unansweredChecks--;
        }
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
      this.entries++;
    } catch (error) {
      this.stop("redis-error", error);
    }
  }
}
