/**
 * Job events to OpenAI text-completion objects: streamed chunks and the
 * non-streamed response. Same conventions as `chat-encoding.ts`.
 */
import type { FinishReason, JobEvent } from "../jobs.js";
import { chunkPrefix, usageOf, type CompletionIdentity, type StreamEncoderOptions } from "./encoding-common.js";
import type { CompletionUsage } from "./common-schema.js";
import type { CompletionResponse } from "./completion-schema.js";

type CompletionFinishReason = CompletionResponse["choices"][number]["finish_reason"];

/** Text completions have no tool calls; a tool-call finish can only be a plain stop. */
function completionFinishReason(reason: FinishReason): CompletionFinishReason {
  return reason === "tool_calls" ? "stop" : reason;
}

/** Turns the events of one completion job into `text_completion` chunk JSON texts. */
export class CompletionStreamEncoder {
  readonly #prefix: string;
  readonly #suffix: string;
  readonly #usagePrefix: string;
  readonly #includeUsage: boolean;
  #promptTokens = 0;
  #completionTokens = 0;

  constructor(options: StreamEncoderOptions) {
    this.#prefix = chunkPrefix("text_completion", options);
    this.#includeUsage = options.includeUsage;
    this.#suffix = options.includeUsage ? '],"usage":null}' : "]}";
    this.#usagePrefix = this.#prefix + '],"usage":';
  }

  /** The chunk JSON for one event, or undefined when the event has nothing to send. */
  encode(event: JobEvent): string | undefined {
    switch (event.type) {
      case "accepted":
        this.#promptTokens = event.promptTokens;
        return undefined;
      case "text-delta":
        if (event.text === "") return undefined;
        return this.#prefix + '{"text":' + JSON.stringify(event.text) + ',"index":' + event.index + ',"logprobs":null,"finish_reason":null}' + this.#suffix;
      case "finish":
        this.#completionTokens += event.completionTokens;
        if (event.promptTokens !== undefined) this.#promptTokens = event.promptTokens;
        return (
          this.#prefix +
          '{"text":"","index":' +
          event.index +
          ',"logprobs":null,"finish_reason":"' +
          completionFinishReason(event.finishReason) +
          '"}' +
          this.#suffix
        );
      case "tool-call-delta":
      case "embeddings":
      case "error":
        return undefined;
    }
  }

  /** The final usage chunk (`choices: []`) when `include_usage` is set. */
  end(): string | undefined {
    if (!this.#includeUsage) return undefined;
    return this.#usagePrefix + JSON.stringify(this.usage) + "}";
  }

  get usage(): CompletionUsage {
    return usageOf(this.#promptTokens, this.#completionTokens);
  }
}

/** Collects the events of one completion job into a `text_completion` response. */
export class CompletionAccumulator {
  readonly #identity: CompletionIdentity;
  readonly #texts: string[][] = [];
  readonly #finishReasons: FinishReason[] = [];
  #promptTokens = 0;
  #completionTokens = 0;

  /**
   * @param choiceCount choices known up front, so prompts that produced no text still get a choice;
   * a finished choice past it (with `n` > 1) gets one too.
   */
  constructor(identity: CompletionIdentity, choiceCount: number) {
    this.#identity = identity;
    for (let index = 0; index < choiceCount; index++) this.#texts.push([]);
  }

  add(event: JobEvent): void {
    switch (event.type) {
      case "accepted":
        this.#promptTokens = event.promptTokens;
        return;
      case "text-delta":
        (this.#texts[event.index] ??= []).push(event.text);
        return;
      case "finish":
        this.#texts[event.index] ??= [];
        this.#finishReasons[event.index] = event.finishReason;
        this.#completionTokens += event.completionTokens;
        if (event.promptTokens !== undefined) this.#promptTokens = event.promptTokens;
        return;
      default:
        return;
    }
  }

  toResponse(): CompletionResponse {
    const choices: CompletionResponse["choices"] = [];
    for (let index = 0; index < this.#texts.length; index++) {
      choices.push({
        text: (this.#texts[index] ?? []).join(""),
        index,
        logprobs: null,
        finish_reason: completionFinishReason(this.#finishReasons[index] ?? "stop"),
      });
    }
    return {
      id: this.#identity.id,
      object: "text_completion",
      created: this.#identity.created,
      model: this.#identity.model,
      system_fingerprint: this.#identity.systemFingerprint,
      choices,
      usage: usageOf(this.#promptTokens, this.#completionTokens),
    };
  }
}
