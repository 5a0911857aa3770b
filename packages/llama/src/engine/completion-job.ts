/**
 * Completion jobs: raw text continuation of each prompt, `n` choices per
 * prompt, in order, on one pooled sequence.
 */
import { LlamaCompletion, LlamaVocabularyType, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";
import { invalidRequest, type CompletionJob, type FinishReason } from "@switchboard/protocol";
import { completionTokens, samplingForChoice } from "./chat-job.js";
import { keepCommonPrefix, prefixAffinity, promptTooLong, resetSequence, type JobPlan } from "./job-plan.js";
import type { ModelRuntime } from "./model-runtime.js";
import { samplingOptions, stopTriggers } from "./sampling.js";

/** Checks a completion job (every prompt must fit the context) and prepares it. */
export function planCompletion(job: CompletionJob, runtime: ModelRuntime): JobPlan<LlamaContextSequence> {
  // node-llama-cpp reads maxTokens 0 as "no limit".
  if (!(job.maxTokens >= 1)) throw invalidRequest("'max_tokens' must be at least 1.", "max_tokens");
  const model = runtime.model;
  const contextSize = runtime.contextSize;
  const bos = beginningToken(model);
  const prependsBos = bos !== undefined;
  const prompts = job.prompts.map((prompt, index) => {
    // As LlamaCompletion tokenizes: no special tokens, and it prepends the BOS token itself.
    const tokens = model.tokenize(prompt, false, prependsBos ? "trimLeadingSpace" : undefined);
    const count = tokens.length + (prependsBos ? 1 : 0);
    const param = job.prompts.length > 1 ? `prompt[${index}]` : "prompt";
    if (count === 0) throw invalidRequest("The prompt must not be empty for this model.", param);
    if (count + 1 >= contextSize) throw promptTooLong(count, contextSize, param, "prompt");
    // What the sequence will hold once the prompt is evaluated.
    const evaluated = bos === undefined ? tokens : [bos, ...tokens];
    return { tokens, evaluated, count, maxTokens: Math.min(job.maxTokens, contextSize - count - 1) };
  });
  const sampling = samplingOptions(job.sampling, model);
  const customStopTriggers = stopTriggers(job.stop);
  const perPrompt = job.n ?? 1;

  return {
    choices: prompts.length * perPrompt,
    promptTokens: prompts.reduce((sum, prompt) => sum + prompt.count, 0),
    pool: runtime.sequences,
    affinity: prefixAffinity(prompts[0]?.evaluated ?? []),
    reset: resetSequence,
    async execute(sequence, emit, signal, usage) {
      for (const [promptIndex, prompt] of prompts.entries()) {
        // The prompt's later choices erase back to it and re-evaluate only its last token.
        for (let choice = 0; choice < perPrompt; choice++) {
          if (signal.aborted) return;
          const kept = await keepCommonPrefix(sequence, prompt.evaluated);
          if (choice === 0) usage.reusedPromptTokens += kept;
          // OpenAI's order: all choices of the first prompt, then of the next.
          const index = promptIndex * perPrompt + choice;
          const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
          const meterBefore = sequence.tokenMeter.getState();
          let stopReason: string;
          try {
            const result = await completion.generateCompletionWithMeta(prompt.tokens as Token[], {
              ...samplingForChoice(sampling, choice),
              maxTokens: prompt.maxTokens,
              signal,
              stopOnAbortSignal: true,
              // The prompt was checked to fit: never drop its start or shift the context.
              disableContextShift: true,
              contextShiftSize: 1,
              ...(customStopTriggers ? { customStopTriggers } : {}),
              onTextChunk(text) {
                if (text.length > 0) emit({ type: "text-delta", index, text });
              },
            });
            stopReason = result.metadata.stopReason;
          } catch (error) {
            if (signal.aborted) return;
            throw error;
          } finally {
            completion.dispose();
          }
          if (signal.aborted || stopReason === "abort") return;
          const finishReason: FinishReason = stopReason === "maxTokens" ? "length" : "stop";
          emit({ type: "finish", index, finishReason, completionTokens: completionTokens(sequence, meterBefore, stopReason) });
        }
      }
    },
  };
}

/** The token LlamaCompletion puts before a prompt, mirroring node-llama-cpp's rule. */
function beginningToken(model: LlamaModel): Token | undefined {
  const { vocabularyType, tokens } = model;
  if (vocabularyType === LlamaVocabularyType.rwkv || vocabularyType === LlamaVocabularyType.ugm) return undefined;
  if (vocabularyType === LlamaVocabularyType.wpm) return tokens.bos ?? undefined;
  return tokens.shouldPrependBosToken ? (tokens.bos ?? undefined) : undefined;
}
