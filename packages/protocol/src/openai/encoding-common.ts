/** Pieces shared by the chat and text-completion encoders. */
import type { CompletionUsage } from "./common-schema.js";

/** What every chunk or response of one completion shares. */
export interface CompletionIdentity {
  /** Response id (`chatcmpl-...`, `cmpl-...`). */
  id: string;
  /** Catalog id of the model. */
  model: string;
  /** Unix time in seconds. */
  created: number;
  systemFingerprint: string;
}

export interface StreamEncoderOptions extends CompletionIdentity {
  /** `stream_options.include_usage`: `usage: null` on each chunk and a final usage chunk. */
  includeUsage: boolean;
}

/** Usage in OpenAI's shape from prompt and completion token counts. */
export function usageOf(promptTokens: number, completionTokens: number): CompletionUsage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** Text of the members every chunk starts with, up to and including `"choices":[`. */
export function chunkPrefix(object: string, identity: CompletionIdentity): string {
  return (
    `{"id":${JSON.stringify(identity.id)},"object":"${object}","created":${identity.created},` +
    `"model":${JSON.stringify(identity.model)},"system_fingerprint":${JSON.stringify(identity.systemFingerprint)},"choices":[`
  );
}

