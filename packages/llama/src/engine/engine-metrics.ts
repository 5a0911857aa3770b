/**
 * What the llama engine tells metrics. `@switchboard/metrics` implements it
 * (`createMetrics().llama`), so the engine never imports prom-client. Sequences
 * and context use are read at scrape time from `LlamaBackend.queueStates()`.
 * Calls are made once per model load and once per job, never per token.
 */
export interface LlamaEngineMetrics {
  /** A model finished loading (file resolved and checked; GGUF loaded, contexts made), or failed to. */
  modelLoaded(info: { model: string; seconds: number; outcome: "ok" | "failed" }): void;
  /**
   * A job that held a sequence ended. `seconds`: from taking the sequence to
   * the end; `decodeSeconds`: from the first output to the last `finish`
   * (absent without output); `cancelled`: the client went away;
   * `reusedPromptTokens`: the part of `promptTokens` not evaluated again
   * because the sequence still held it from an earlier job.
   */
  jobFinished(info: {
    model: string;
    kind: string;
    outcome: "completed" | "failed" | "cancelled";
    promptTokens: number;
    reusedPromptTokens?: number;
    completionTokens: number;
    seconds: number;
    decodeSeconds?: number;
  }): void;
}
