/**
 * OpenAI sampling settings → node-llama-cpp generation options.
 */
import type { LLamaContextualRepeatPenalty } from "node-llama-cpp";
import type { JobSampling } from "@switchboard/protocol";

/** OpenAI's default when neither the request nor the model config sets one (node-llama-cpp's is 0). */
export const defaultTemperature = 1;

/** Recent tokens the presence/frequency penalties look at (OpenAI counts the whole reply; this bounds the cost). */
const penaltyWindow = 256;

export interface SamplingOptions {
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
  /** `false` turns off node-llama-cpp's default repeat penalty of 1.1, which OpenAI does not have. */
  repeatPenalty: false | LLamaContextualRepeatPenalty;
}

export function samplingOptions(sampling: JobSampling): SamplingOptions {
  const options: SamplingOptions = {
    temperature: sampling.temperature ?? defaultTemperature,
    repeatPenalty: false,
  };
  if (sampling.topP !== undefined) options.topP = sampling.topP;
  if (sampling.topK !== undefined) options.topK = sampling.topK;
  if (sampling.seed !== undefined) options.seed = sampling.seed;
  const presencePenalty = sampling.presencePenalty ?? 0;
  const frequencyPenalty = sampling.frequencyPenalty ?? 0;
  if (presencePenalty !== 0 || frequencyPenalty !== 0) {
    // OpenAI's penalties are additive on logits, as llama.cpp's are; the multiplicative one stays off.
    options.repeatPenalty = { penalty: 1, presencePenalty, frequencyPenalty, lastTokens: penaltyWindow, penalizeNewLine: true };
  }
  return options;
}

/** Stop strings as node-llama-cpp stop triggers (empty strings would stop at once). */
export function stopTriggers(stop: readonly string[]): string[] | undefined {
  const triggers = stop.filter((value) => value.length > 0);
  return triggers.length > 0 ? triggers : undefined;
}
