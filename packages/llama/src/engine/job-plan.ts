/**
 * What a job becomes once every check that can fail before generation has
 * passed: its exact prompt size, the pool it waits in, and the work to run on
 * the slot it gets.
 */
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { GatewayError, type JobEvent } from "@switchboard/protocol";
import type { SlotPool } from "./slot-pool.js";

export interface JobPlan<Slot> {
  /** Number of choices; each ends with one `finish` event. */
  choices: number;
  /** Prompt tokens by the model's tokenizer, chat template included. */
  promptTokens: number;
  pool: SlotPool<Slot>;
  /** Ranks free slots for this job (higher is better): the cached prompt tokens it could reuse. */
  affinity?: (slot: Slot) => number;
  /**
   * Generates on the slot, emitting deltas and one `finish` per choice, and
   * adds the prompt tokens it found already evaluated to `usage`.
   * Resolves early, without `finish`, when `signal` aborts; throws on failure.
   */
  execute(slot: Slot, emit: (event: JobEvent) => void, signal: AbortSignal, usage: JobUsage): Promise<void>;
  /**
   * Readies the slot for the next job before it goes back to the pool:
   * `keepState` after a job that ended cleanly (its tokens stay cached for a
   * later prompt that starts the same way), otherwise the state is cleared.
   */
  reset(slot: Slot, keepState: boolean): Promise<void>;
}

export interface JobUsage {
  /** Prompt tokens whose evaluation was kept from an earlier job on the sequence. */
  reusedPromptTokens: number;
}

/**
 * A cached prefix shorter than this does not outweigh spreading jobs over
 * contexts: a chat template's opening tokens are shared by every prompt.
 */
export const minReusedPrefixTokens = 32;

/** Clears a sequence's KV state so the next job starts from nothing. */
export async function clearSequence(sequence: LlamaContextSequence): Promise<void> {
  if (!sequence.disposed && sequence.nextTokenIndex > 0) await sequence.clearHistory();
}

/** The `reset` of sequence jobs: keep the evaluated tokens after a clean end, clear them otherwise. */
export async function resetSequence(sequence: LlamaContextSequence, keepState: boolean): Promise<void> {
  if (!keepState) await clearSequence(sequence);
}

/** How many tokens a sequence could reuse for `tokens`; the last one is always evaluated again. */
export function reusablePrefix(sequence: LlamaContextSequence, tokens: readonly Token[]): number {
  if (sequence.disposed || sequence.nextTokenIndex === 0) return 0;
  return Math.max(0, Math.min(sequence.compareContextTokens(tokens as Token[]).firstDifferentIndex, tokens.length - 1));
}

/** Slot affinity for a prompt: the prefix a sequence already holds, when long enough to matter. */
export function prefixAffinity(tokens: readonly Token[]): (sequence: LlamaContextSequence) => number {
  return (sequence) => {
    const reusable = reusablePrefix(sequence, tokens);
    return reusable >= minReusedPrefixTokens ? reusable : 0;
  };
}

/**
 * Erases everything the sequence holds past its common prefix with `tokens`,
 * so the job evaluates on exactly that prefix and nothing an earlier job left
 * after it; returns the tokens kept. node-llama-cpp would erase the same
 * range itself (`adaptStateToTokens`); doing it here keeps the isolation
 * independent of that and measures the reuse.
 */
export async function keepCommonPrefix(sequence: LlamaContextSequence, tokens: readonly Token[]): Promise<number> {
  const kept = reusablePrefix(sequence, tokens);
  if (kept < sequence.nextTokenIndex) await sequence.eraseContextTokenRanges([{ start: kept, end: sequence.nextTokenIndex }]);
  return sequence.nextTokenIndex;
}

/** A prompt that does not fit: counted before generation, worded as OpenAI words it. */
export function promptTooLong(promptTokens: number, contextSize: number, param: string, what = "messages"): GatewayError {
  return new GatewayError(
    `This model's maximum context length is ${contextSize} tokens. However, your ${what} resulted in ${promptTokens} tokens, ` +
      `leaving no room for the completion. Please reduce the length of the ${what}.`,
    { status: 400, type: "invalid_request_error", param, code: "context_length_exceeded" },
  );
}
