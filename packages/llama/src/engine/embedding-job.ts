/**
 * Embedding jobs: one vector per input, from the model's embedding context
 * (one input at a time), scaled to unit length as OpenAI's are.
 */
import type { LlamaEmbeddingContext } from "node-llama-cpp";
import { invalidRequest, type EmbeddingJob } from "@switchboard/protocol";
import { promptTooLong, type JobPlan } from "./job-plan.js";
import type { ModelRuntime } from "./model-runtime.js";

/** Checks an embedding job (every input must fit the embedding context) and prepares it. */
export async function planEmbedding(job: EmbeddingJob, runtime: ModelRuntime): Promise<JobPlan<LlamaEmbeddingContext>> {
  if (!runtime.config.embeddings) throw invalidRequest(`The model '${runtime.config.id}' does not serve embeddings.`, "model");
  if (job.input.length === 0) throw invalidRequest("'input' must not be empty.", "input");
  const { context, pool } = await runtime.embedding();
  const contextSize = runtime.contextSize;
  let promptTokens = 0;
  for (const [index, input] of job.input.entries()) {
    const param = job.input.length > 1 ? `input[${index}]` : "input";
    if (input.length === 0) throw invalidRequest("'input' must not contain empty strings.", param);
    const count = context.calculateInputLength(input);
    // llama.cpp needs the whole input in one window (and one cell to spare).
    if (count >= contextSize) throw promptTooLong(count, contextSize, param, "input");
    promptTokens += count;
  }

  return {
    choices: 1,
    promptTokens,
    pool,
    async reset() {},
    async execute(embeddingContext, emit, signal) {
      const vectors: number[][] = [];
      for (const input of job.input) {
        if (signal.aborted) return;
        const embedding = await embeddingContext.getEmbeddingFor(input);
        vectors.push(unitLength(embedding.vector));
      }
      if (signal.aborted) return;
      emit({ type: "embeddings", vectors });
      emit({ type: "finish", index: 0, finishReason: "stop", completionTokens: 0 });
    },
  };
}

function unitLength(vector: readonly number[]): number[] {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  return norm > 0 ? vector.map((value) => value / norm) : [...vector];
}
