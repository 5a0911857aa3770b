/**
 * OpenAI sampling settings → node-llama-cpp generation options.
 */
import { TokenBias, type LLamaContextualRepeatPenalty, type LlamaModel, type Token } from "node-llama-cpp";
import { invalidRequest, type JobSampling } from "@switchboard/protocol";

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
  /** OpenAI `logit_bias`; the same for every choice. */
  tokenBias?: TokenBias;
}

/** Settings for `model`; throws a 400 for a `logit_bias` id the model does not have. */
export function samplingOptions(sampling: JobSampling, model: LlamaModel): SamplingOptions {
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
  const tokenBias = logitBias(sampling.logitBias, model);
  if (tokenBias) options.tokenBias = tokenBias;
  return options;
}

/**
 * OpenAI `logit_bias` as a TokenBias. `{ logit }` adds the bias to the logit
 * as OpenAI does (a plain number would be read as a probability change).
 */
function logitBias(bias: Record<string, number> | undefined, model: LlamaModel): TokenBias | undefined {
  if (bias === undefined) return undefined;
  const entries = Object.entries(bias);
  if (entries.length === 0) return undefined;
  const vocabularySize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
  const tokenBias = new TokenBias(model.tokenizer);
  for (const [key, value] of entries) {
    const param = `logit_bias.${key}`;
    const token = Number(key);
    // An id past the vocabulary would address a logit that does not exist: it must never reach the sampler.
    if (!Number.isInteger(token) || token < 0 || token >= vocabularySize)
      throw invalidRequest(`'${param}': token id ${key} is not in this model's vocabulary (ids 0 to ${vocabularySize - 1}). Use ids of the model's own tokenizer.`, param);
    // node-llama-cpp silently drops biases on end-of-generation tokens: refused rather than ignored.
    if (model.isEogToken(token as Token))
      throw invalidRequest(`'${param}': token ${key} ends the generation, and its bias cannot be set. Leave it out; use 'max_tokens' or 'stop' to control length.`, param);
    tokenBias.set(token as Token, { logit: value });
  }
  return tokenBias;
}

/** Stop strings as node-llama-cpp stop triggers (empty strings would stop at once). */
export function stopTriggers(stop: readonly string[]): string[] | undefined {
  const triggers = stop.filter((value) => value.length > 0);
  return triggers.length > 0 ? triggers : undefined;
}
