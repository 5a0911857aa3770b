/**
 * Reading a job's event stream for metrics without changing it: when the
 * first output arrived, how many tokens went in and out, how the job ended.
 * Used at the gateway (what the client saw) and around a backend (what the
 * engine did), so both measure the same way.
 */
import { metricsNow, type JobEvent } from "@switchboard/protocol";

/** How a job ended, as metrics label it. */
export type JobOutcome = "completed" | "failed" | "cancelled";

/**
 * Something that watches one job's events as they pass (the gateway's job
 * runner, a transport) and is told once when the job ends: `finished` when
 * its event stream ran to the end, false when the reader stopped early (the
 * client went away) or the stream broke. Once `outputSeen`, text deltas
 * carry nothing it counts: a reader may skip showing them.
 */
export interface JobObserver {
  readonly outputSeen: boolean;
  see(event: JobEvent): void;
  end(finished: boolean): void;
}

/**
 * Timings and token counts of one job, in milliseconds on {@link now}'s
 * clock (`performance.now()` through {@link metricsNow}, unless a subclass
 * reads another). The clock is read only where a time is kept: the first
 * output and each `finish`.
 */
export class GenerationTimer {
  readonly startedAt: number;
  promptTokens = 0;
  completionTokens = 0;
  accepted = false;
  firstOutputAt: number | undefined;
  lastOutputAt: number | undefined;
  /** Whether the stream carried an `error` event. */
  failed = false;

  constructor(startedAt: number = metricsNow()) {
    this.startedAt = startedAt;
  }

  /** Whether an output arrived: later text deltas change nothing here (see {@link JobObserver}). */
  get outputSeen(): boolean {
    return this.firstOutputAt !== undefined;
  }

  /** The clock the times are read from. */
  protected now(): number {
    return metricsNow();
  }

  /** Reads one event; `now` overrides the clock (tests). */
  see(event: JobEvent, now?: number): void {
    switch (event.type) {
      case "accepted":
        this.accepted = true;
        this.promptTokens += event.promptTokens;
        return;
      case "finish":
        this.completionTokens += event.completionTokens;
        this.lastOutputAt = now ?? this.now();
        this.firstOutputAt ??= this.lastOutputAt;
        return;
      case "error":
        this.failed = true;
        return;
      default:
        // Text, tool-call arguments, embeddings, task results: output.
        if (this.firstOutputAt === undefined) this.firstOutputAt = now ?? this.now();
    }
  }

  /** How the job ended, from what was seen and whether the stream ran to its end. */
  outcome(finished: boolean): JobOutcome {
    return this.failed ? "failed" : finished ? "completed" : "cancelled";
  }

  /** Seconds from the start to the first output, if any came. */
  timeToFirstOutput(): number | undefined {
    return this.firstOutputAt === undefined ? undefined : (this.firstOutputAt - this.startedAt) / 1000;
  }

  /**
   * Seconds per output token after the first (OpenTelemetry's
   * `time_per_output_token`): from the first output to the last `finish`;
   * undefined with fewer than two tokens. 0 when every token came at once
   * (a backend that answers whole, events read in one run of the clock).
   */
  timePerOutputToken(): number | undefined {
    if (this.completionTokens < 2 || this.firstOutputAt === undefined || this.lastOutputAt === undefined) return undefined;
    const span = this.lastOutputAt - this.firstOutputAt;
    return span >= 0 ? span / 1000 / (this.completionTokens - 1) : undefined;
  }
}

/**
 * Wraps an event iterator: `see` gets each event as it passes, `end` once
 * when the stream ends, throws, or is stopped early by its reader (client
 * gone). One promise hop per event, no generator.
 */
export function tapEvents(
  events: AsyncIterator<JobEvent>,
  see: (event: JobEvent) => void,
  end: (how: "done" | "stopped" | "threw") => void,
): AsyncIterator<JobEvent> & AsyncIterable<JobEvent> {
  let ended = false;
  const finish = (how: "done" | "stopped" | "threw") => {
    if (ended) return;
    ended = true;
    end(how);
  };
  const tapped: AsyncIterator<JobEvent> & AsyncIterable<JobEvent> = {
    next: () =>
      events.next().then(
        (result) => {
          if (result.done) finish("done");
          else see(result.value);
          return result;
        },
        (error: unknown) => {
          finish("threw");
          throw error;
        },
      ),
    return: (value?: unknown) => {
      finish("stopped");
      return events.return ? events.return(value) : Promise.resolve({ done: true as const, value: undefined });
    },
    [Symbol.asyncIterator]() {
      return tapped;
    },
  };
  return tapped;
}
