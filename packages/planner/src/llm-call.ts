/**
 * Running one chat job on an injected LLM, and the clock that tells model
 * time from the loop's own time.
 */
import { GatewayError, type ChatJob, type FinishReason, type JobChatMessage, type JobResponseFormat } from "@switchboard/protocol";
import type { ChatLlm, LlmRoleSettings } from "./types.js";

/**
 * Measures the time at least one model call (an LLM job or a task) is in
 * flight. The rest of a run's wall time is the loop's own overhead.
 */
export class ModelClock {
  #active = 0;
  #since = 0;
  #busyMs = 0;
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Marks a model call in flight until the returned function is called (once). */
  begin(): () => void {
    if (this.#active++ === 0) this.#since = this.#now();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.#active === 0) this.#busyMs += this.#now() - this.#since;
    };
  }

  /** Model time so far, milliseconds (an open interval counts up to now). */
  busyMs(): number {
    return this.#busyMs + (this.#active > 0 ? this.#now() - this.#since : 0);
  }
}

export interface LlmCallOptions {
  llm: ChatLlm;
  id: string;
  requestId: string;
  messages: JobChatMessage[];
  settings: LlmRoleSettings;
  responseFormat?: JobResponseFormat;
  deadlineAt?: number;
  signal: AbortSignal;
  clock?: ModelClock;
  /** Called with each text delta as it arrives. */
  onDelta?: (text: string) => void;
}

export interface LlmAnswer {
  text: string;
  finishReason: FinishReason | undefined;
}

/** Builds the chat job for a call. */
export function chatJob(options: Omit<LlmCallOptions, "signal" | "clock" | "onDelta" | "llm"> & { model: string }): ChatJob {
  const job: ChatJob = {
    kind: "chat",
    id: options.id,
    requestId: options.requestId,
    model: options.model,
    messages: options.messages,
    maxTokens: options.settings.maxTokens,
    sampling: {
      ...(options.settings.temperature === undefined ? {} : { temperature: options.settings.temperature }),
      ...(options.settings.seed === undefined ? {} : { seed: options.settings.seed }),
    },
    stop: [],
  };
  if (options.responseFormat) job.responseFormat = options.responseFormat;
  if (options.deadlineAt !== undefined) job.deadlineAt = options.deadlineAt;
  return job;
}

/** Runs one chat job to its end; an `error` event is thrown as a GatewayError. */
export async function callLlm(options: LlmCallOptions): Promise<LlmAnswer> {
  const job = chatJob({ ...options, model: options.llm.model });
  const end = options.clock?.begin();
  try {
    let text = "";
    let finishReason: FinishReason | undefined;
    for await (const event of options.llm.submit(job, { signal: options.signal })) {
      if (event.type === "text-delta" && event.index === 0) {
        text += event.text;
        options.onDelta?.(event.text);
      } else if (event.type === "finish" && event.index === 0) finishReason = event.finishReason;
      else if (event.type === "error") throw GatewayError.fromPayload(event.error);
    }
    if (options.signal.aborted) throw options.signal.reason ?? new Error("aborted");
    return { text, finishReason };
  } finally {
    end?.();
  }
}
