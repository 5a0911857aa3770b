/**
 * What a job becomes once every check that can fail before generation has
 * passed: its exact prompt size, the pool it waits in, and the work to run on
 * the slot it gets.
 */
import type { LlamaContextSequence } from "node-llama-cpp";
import { GatewayError, type JobEvent } from "@switchboard/protocol";
import type { SlotPool } from "./slot-pool.js";

export interface JobPlan<Slot> {
  /** Number of choices; each ends with one `finish` event. */
  choices: number;
  /** Prompt tokens by the model's tokenizer, chat template included. */
  promptTokens: number;
  pool: SlotPool<Slot>;
  /**
   * Generates on the slot, emitting deltas and one `finish` per choice.
   * Resolves early, without `finish`, when `signal` aborts; throws on failure.
   */
  execute(slot: Slot, emit: (event: JobEvent) => void, signal: AbortSignal): Promise<void>;
  /** Makes the slot clean for the next job before it goes back to the pool. */
  reset(slot: Slot): Promise<void>;
}

/** Clears a sequence's KV state so the next job starts from nothing. */
export async function clearSequence(sequence: LlamaContextSequence): Promise<void> {
  if (!sequence.disposed && sequence.nextTokenIndex > 0) await sequence.clearHistory();
}

/** A prompt that does not fit: counted before generation, worded as OpenAI words it. */
export function promptTooLong(promptTokens: number, contextSize: number, param: string, what = "messages"): GatewayError {
  return new GatewayError(
    `This model's maximum context length is ${contextSize} tokens. However, your ${what} resulted in ${promptTokens} tokens, ` +
      `leaving no room for the completion. Please reduce the length of the ${what}.`,
    { status: 400, type: "invalid_request_error", param, code: "context_length_exceeded" },
  );
}
