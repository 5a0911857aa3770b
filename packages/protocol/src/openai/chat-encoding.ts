/**
 * The one place where job events become OpenAI chat objects: streamed chunks
 * ({@link ChatStreamEncoder}) and the non-streamed response
 * ({@link ChatCompletionAccumulator}).
 *
 * The stream encoder is on the per-token hot path, so it writes chunk JSON
 * from precomputed text around the only varying parts (index, delta text)
 * instead of building and serialising an object for every token. Tests parse
 * its output and validate it against the schemas.
 */
import type { FinishReason, JobEvent, TokenLogprob } from "../jobs.js";
import type { ChatCompletionResponse, ChatMessageToolCall } from "./chat-completion-schema.js";
import type { CompletionUsage } from "./common-schema.js";
import { chunkPrefix, usageOf, type CompletionIdentity, type StreamEncoderOptions } from "./encoding-common.js";

/**
 * Turns the events of one chat job into `chat.completion.chunk` JSON texts.
 * Feed every event except `error` (the caller frames errors with `sseError`)
 * to {@link encode}; after the last event, {@link end} gives the usage chunk
 * when `include_usage` was asked for. Wrap each text with `sseData`.
 *
 * The first delta of each choice carries `role: "assistant"` (LangChain
 * needs it): choice 0 gets a role-only chunk as soon as the job is accepted,
 * so clients see the stream open before the first token.
 */
export class ChatStreamEncoder {
  readonly #prefix: string;
  readonly #suffix: string;
  readonly #usagePrefix: string;
  readonly #includeUsage: boolean;
  /** Choices whose first delta (with the role) has gone out. */
  readonly #started: boolean[] = [];
  /** Tool calls per choice whose first delta (with id, type, name) has gone out. */
  readonly #startedCalls: boolean[][] = [];
  #promptTokens = 0;
  #completionTokens = 0;

  constructor(options: StreamEncoderOptions) {
    this.#prefix = chunkPrefix("chat.completion.chunk", options);
    this.#includeUsage = options.includeUsage;
    this.#suffix = options.includeUsage ? '],"usage":null}' : "]}";
    this.#usagePrefix = this.#prefix + '],"usage":';
  }

  /** The chunk JSON for one event, or undefined when the event has nothing to send. */
  encode(event: JobEvent): string | undefined {
    switch (event.type) {
      case "accepted":
        this.#promptTokens = event.promptTokens;
        this.#started[0] = true;
        return this.#prefix + '{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}' + this.#suffix;
      case "text-delta":
        if (event.text === "" && event.logprobs === undefined) return undefined;
        return (
          this.#prefix +
          '{"index":' +
          event.index +
          ',"delta":{' +
          this.#roleOnce(event.index) +
          '"content":' +
          JSON.stringify(event.text) +
          (event.logprobs === undefined ? '},"logprobs":null,"finish_reason":null}' : '},"logprobs":' + JSON.stringify(choiceLogprobs(event.logprobs)) + ',"finish_reason":null}') +
          this.#suffix
        );
      case "tool-call-delta": {
        const calls = (this.#startedCalls[event.index] ??= []);
        const first = !calls[event.toolCallIndex];
        calls[event.toolCallIndex] = true;
        const call = first
          ? {
              index: event.toolCallIndex,
              id: event.id ?? `call_${event.index}_${event.toolCallIndex}`,
              type: "function",
              function: { name: event.name ?? "", arguments: event.argumentsDelta },
            }
          : { index: event.toolCallIndex, function: { arguments: event.argumentsDelta } };
        return (
          this.#prefix +
          '{"index":' +
          event.index +
          ',"delta":{' +
          this.#roleOnce(event.index) +
          '"tool_calls":[' +
          JSON.stringify(call) +
          ']},"logprobs":null,"finish_reason":null}' +
          this.#suffix
        );
      }
      case "finish":
        this.#completionTokens += event.completionTokens;
        if (event.promptTokens !== undefined) this.#promptTokens = event.promptTokens;
        return (
          this.#prefix +
          '{"index":' +
          event.index +
          ',"delta":{' +
          this.#roleOnce(event.index).slice(0, -1) +
          '},"logprobs":null,"finish_reason":"' +
          event.finishReason +
          '"}' +
          this.#suffix
        );
      case "progress":
        // Router runs: the stage as reasoning text chat UIs show apart from the answer, and as data.
        return (
          this.#prefix +
          '{"index":0,"delta":{' +
          this.#roleOnce(0) +
          '"reasoning_content":' +
          JSON.stringify(event.text) +
          '},"logprobs":null,"finish_reason":null}],"switchboard":{"progress":' +
          JSON.stringify(event.progress) +
          "}" +
          this.#suffix.slice(1)
        );
      case "embeddings":
      case "error":
      case "task-result":
      case "run":
        return undefined;
    }
  }

  /** The final usage chunk (`choices: []`) when `include_usage` is set; call once after the last event. */
  end(): string | undefined {
    if (!this.#includeUsage) return undefined;
    return this.#usagePrefix + JSON.stringify(this.usage) + "}";
  }

  /** Usage so far: prompt tokens from `accepted`, completion tokens summed from `finish` events. */
  get usage(): CompletionUsage {
    return usageOf(this.#promptTokens, this.#completionTokens);
  }

  /** `"role":"assistant",` for the first delta of a choice, then the empty string. */
  #roleOnce(index: number): string {
    if (this.#started[index]) return "";
    this.#started[index] = true;
    return '"role":"assistant",';
  }
}

/** A choice's `logprobs` object for these tokens. */
function choiceLogprobs(content: TokenLogprob[]): { content: TokenLogprob[]; refusal: null } {
  return { content, refusal: null };
}

interface ChoiceState {
  text: string[];
  /** Log probabilities of the choice's tokens, when any delta carried them. */
  logprobs: TokenLogprob[] | undefined;
  toolCalls: { id: string; name: string; arguments: string[] }[];
  finishReason: FinishReason | undefined;
}

/**
 * Collects the events of one chat job into a `chat.completion` response, for
 * requests without `stream`.
 */
export class ChatCompletionAccumulator {
  readonly #identity: CompletionIdentity;
  readonly #choices: ChoiceState[] = [];
  /** Progress of a router run, shown as the message's `reasoning_content`. */
  readonly #reasoning: string[] = [];
  #promptTokens = 0;
  #completionTokens = 0;

  constructor(identity: CompletionIdentity) {
    this.#identity = identity;
  }

  add(event: JobEvent): void {
    switch (event.type) {
      case "accepted":
        this.#promptTokens = event.promptTokens;
        this.#choice(0);
        return;
      case "text-delta": {
        const choice = this.#choice(event.index);
        choice.text.push(event.text);
        if (event.logprobs !== undefined) (choice.logprobs ??= []).push(...event.logprobs);
        return;
      }
      case "tool-call-delta": {
        const calls = this.#choice(event.index).toolCalls;
        const call = (calls[event.toolCallIndex] ??= {
          id: event.id ?? `call_${event.index}_${event.toolCallIndex}`,
          name: "",
          arguments: [],
        });
        if (event.name !== undefined) call.name = event.name;
        call.arguments.push(event.argumentsDelta);
        return;
      }
      case "finish":
        this.#choice(event.index).finishReason = event.finishReason;
        this.#completionTokens += event.completionTokens;
        if (event.promptTokens !== undefined) this.#promptTokens = event.promptTokens;
        return;
      case "progress":
        this.#reasoning.push(event.text);
        return;
      case "embeddings":
      case "error":
      case "task-result":
      case "run":
        return;
    }
  }

  toResponse(): ChatCompletionResponse {
    const choices: ChatCompletionResponse["choices"] = [];
    this.#choices.forEach((choice, index) => {
      const text = choice.text.join("");
      const toolCalls: ChatMessageToolCall[] = choice.toolCalls
        .filter((call) => call !== undefined)
        .map((call) => ({ id: call.id, type: "function" as const, function: { name: call.name, arguments: call.arguments.join("") } }));
      const message: ChatCompletionResponse["choices"][number]["message"] = {
        role: "assistant",
        // OpenAI sends null content for a turn that only called tools.
        content: text === "" && toolCalls.length > 0 ? null : text,
        refusal: null,
      };
      if (toolCalls.length > 0) message.tool_calls = toolCalls;
      if (index === 0 && this.#reasoning.length > 0) Object.assign(message, { reasoning_content: this.#reasoning.join("") });
      choices.push({ index, message, logprobs: choice.logprobs === undefined ? null : choiceLogprobs(choice.logprobs), finish_reason: choice.finishReason ?? "stop" });
    });
    return {
      id: this.#identity.id,
      object: "chat.completion",
      created: this.#identity.created,
      model: this.#identity.model,
      system_fingerprint: this.#identity.systemFingerprint,
      choices,
      usage: usageOf(this.#promptTokens, this.#completionTokens),
    };
  }

  #choice(index: number): ChoiceState {
    return (this.#choices[index] ??= { text: [], logprobs: undefined, toolCalls: [], finishReason: undefined });
  }
}
