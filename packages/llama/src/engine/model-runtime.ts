/**
 * One configured model: its load state, and once loaded the llama.cpp
 * resources jobs run on (one context with N sequences, a lazily made
 * embedding context, cached grammars).
 */
import { basename } from "node:path";
import {
  resolveChatWrapper,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
} from "node-llama-cpp";
import type { LlamaModelConfig } from "@switchboard/catalog";
import type { Logger, ModelState } from "@switchboard/protocol";
import type { LlamaEngineMetrics } from "./engine-metrics.js";
import { SlotPool } from "./slot-pool.js";

/** How a backend finds a model's file; may download or generate it, reporting progress. */
export type ResolveModelPath = (model: LlamaModelConfig, report: (state: ModelState) => void) => Promise<string>;

/** Checks a GGUF file before it is loaded in this process; throws with a message that names the problem. */
export type CheckModelFile = (path: string) => Promise<void>;

/** Grammars kept per model; a grammar is small but parsing one costs a few milliseconds. */
const grammarCacheSize = 64;

export interface ModelLoadOptions {
  llama: Llama;
  resolvePath: ResolveModelPath;
  checkFile: CheckModelFile | undefined;
  logger: Logger;
  /** Offload layers to the GPU (only when the Llama was made with GPU support). */
  gpu: boolean;
  /** How many contexts the model's sequences are spread over (each decodes on its own thread). */
  contexts: number;
  metrics?: LlamaEngineMetrics;
}

export class ModelRuntime {
  readonly config: LlamaModelConfig;
  #state: ModelState;
  #llama: Llama | undefined;
  #model: LlamaModel | undefined;
  #contexts: LlamaContext[] = [];
  #sequences: SlotPool<LlamaContextSequence> | undefined;
  /** Every sequence, free or busy, for {@link contextTokensInUse}. */
  #allSequences: LlamaContextSequence[] = [];
  #chatWrapper: ChatWrapper | undefined;
  #embedding: Promise<{ context: LlamaEmbeddingContext; pool: SlotPool<LlamaEmbeddingContext> }> | undefined;
  readonly #grammars = new Map<string, Promise<LlamaGrammar>>();
  #closed = false;
  readonly #settled: Promise<void>;
  #settle!: () => void;

  constructor(config: LlamaModelConfig) {
    this.config = config;
    this.#state = { id: config.id, state: "loading" };
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
  }

  get state(): ModelState {
    return { ...this.#state };
  }

  /** Resolves once the model is ready or has failed. */
  get settled(): Promise<void> {
    return this.#settled;
  }

  get llama(): Llama {
    return this.#require(this.#llama);
  }

  get model(): LlamaModel {
    return this.#require(this.#model);
  }

  get chatWrapper(): ChatWrapper {
    return this.#require(this.#chatWrapper);
  }

  get sequences(): SlotPool<LlamaContextSequence> {
    return this.#require(this.#sequences);
  }

  /**
   * Tokens a job may use: the configured window (llama.cpp may round its
   * allocation up; the configuration is what operators and clients see).
   */
  get contextSize(): number {
    if (this.#contexts.length === 0) this.#require(undefined);
    return Math.min(this.config.contextSize, ...this.#contexts.map((context) => context.contextSize));
  }

  /** Resolves, checks and loads the file; never throws (a failure becomes the `failed` state). */
  async load(options: ModelLoadOptions): Promise<void> {
    const { logger } = options;
    let started: number | undefined;
    try {
      const path = await options.resolvePath(this.config, (state) => {
        if (this.#state.state === "ready" || this.#state.state === "failed") return;
        this.#state = { ...state, id: this.config.id };
      });
      this.#ensureOpen();
      this.#state = { id: this.config.id, state: "loading" };
      // A GGUF with inconsistent metadata can abort the whole process inside llama.cpp: check it first.
      if (options.checkFile) await options.checkFile(path);
      this.#ensureOpen();
      started = performance.now();
      this.#llama = options.llama;
      this.#model = await options.llama.loadModel({ modelPath: path, ...(options.gpu ? {} : { gpuLayers: 0 }) });
      this.#ensureOpen();
      // Sequences spread over contexts: each context decodes its batch on its own thread, so on a
      // small machine two one-thread contexts outrun one (threads > 1 in one context stall instead).
      const contextCount = Math.max(1, Math.min(options.contexts, this.config.sequences));
      const sequences: LlamaContextSequence[] = [];
      for (let index = 0; index < contextCount; index++) {
        const share = Math.floor(this.config.sequences / contextCount) + (index < this.config.sequences % contextCount ? 1 : 0);
        const context = await this.#model.createContext({
          contextSize: this.config.contextSize,
          sequences: share,
          threads: this.config.threads,
          // Context creation must fail loudly rather than shrink the window behind the config's back.
          failedCreationRemedy: false,
        });
        this.#contexts.push(context);
        this.#ensureOpen();
        for (let sequence = 0; sequence < share; sequence++) sequences.push(context.getSequence());
      }
      // A job takes the sequence holding the longest start of its prompt; among equals, one from the
      // context with the most free sequences, spreading the load.
      this.#sequences = new SlotPool(sequences, this.config.maxWaiting, (free, candidates) => {
        let best = candidates.at(-1)!;
        let bestFree = -1;
        for (const index of candidates) {
          const sequence = free[index]!;
          const freeInContext = free.filter((other) => other.context === sequence.context).length;
          if (freeInContext > bestFree) [best, bestFree] = [index, freeInContext];
        }
        return best;
      });
      this.#chatWrapper = resolveChatWrapper(this.#model);
      this.#allSequences = sequences;
      this.#state = { id: this.config.id, state: "ready" };
      options.metrics?.modelLoaded({ model: this.config.id, seconds: (performance.now() - started) / 1000, outcome: "ok" });
      logger.info(
        {
          model: this.config.id,
          file: basename(path),
          chatWrapper: this.#chatWrapper.wrapperName,
          contextSize: this.contextSize,
          sequences: this.config.sequences,
          contexts: this.#contexts.length,
          threads: this.config.threads,
          loadMs: Math.round(performance.now() - started),
        },
        "model ready",
      );
    } catch (error) {
      await this.#disposeResources();
      if (!this.#closed) {
        this.#state = { id: this.config.id, state: "failed", error: safeErrorMessage(error) };
        logger.error({ err: error, model: this.config.id }, "model failed to load");
        if (started !== undefined) options.metrics?.modelLoaded({ model: this.config.id, seconds: (performance.now() - started) / 1000, outcome: "failed" });
      }
    } finally {
      this.#settle();
    }
  }

  /**
   * Tokens held in the model's sequences now: the prompts and outputs of the
   * jobs running, and what idle sequences keep for a later prompt to reuse.
   */
  contextTokensInUse(): number {
    let tokens = 0;
    for (const sequence of this.#allSequences) if (!sequence.disposed) tokens += sequence.nextTokenIndex;
    return tokens;
  }

  /** The part of {@link contextTokensInUse} held by idle sequences, kept for reuse. */
  cachedContextTokens(): number {
    if (!this.#sequences) return 0;
    let tokens = 0;
    for (const sequence of this.#sequences.freeSlots()) if (!sequence.disposed) tokens += sequence.nextTokenIndex;
    return tokens;
  }

  /** Marks the model failed without loading it (llama.cpp itself could not start). */
  fail(message: string): void {
    this.#state = { id: this.config.id, state: "failed", error: message };
    this.#settle();
  }

  /** The embedding context and its one-at-a-time pool, made on first use. */
  embedding(): Promise<{ context: LlamaEmbeddingContext; pool: SlotPool<LlamaEmbeddingContext> }> {
    if (!this.#embedding) {
      const created = (async () => {
        const context = await this.model.createEmbeddingContext({ contextSize: this.config.contextSize, threads: this.config.threads });
        return { context, pool: new SlotPool([context], this.config.maxWaiting) };
      })();
      this.#embedding = created;
      // A failed creation may succeed later (memory freed): do not keep the failure.
      created.catch(() => {
        if (this.#embedding === created) this.#embedding = undefined;
      });
    }
    return this.#embedding;
  }

  /** A grammar per GBNF text, made once. */
  grammar(key: string, create: () => Promise<LlamaGrammar>): Promise<LlamaGrammar> {
    const cached = this.#grammars.get(key);
    if (cached) {
      // Refresh its place: the map's order is the eviction order.
      this.#grammars.delete(key);
      this.#grammars.set(key, cached);
      return cached;
    }
    const created = create();
    this.#grammars.set(key, created);
    created.catch(() => this.#grammars.delete(key));
    if (this.#grammars.size > grammarCacheSize) this.#grammars.delete(this.#grammars.keys().next().value!);
    return created;
  }

  /** Refuses waiting jobs; running jobs must be stopped by the caller before {@link dispose}. */
  closePools(): void {
    this.#closed = true;
    this.#sequences?.close();
    void this.#embedding?.then(({ pool }) => pool.close(), () => {});
  }

  async dispose(): Promise<void> {
    this.#closed = true;
    await this.#disposeResources();
  }

  async #disposeResources(): Promise<void> {
    const embedding = this.#embedding;
    this.#embedding = undefined;
    if (embedding) await embedding.then(({ context }) => context.dispose(), () => {});
    const contexts = this.#contexts.splice(0);
    await Promise.all(contexts.map((context) => context.dispose().catch(() => {})));
    await this.#model?.dispose().catch(() => {});
    this.#model = undefined;
  }

  #ensureOpen(): void {
    if (this.#closed) throw new Error("the backend closed while the model was loading");
  }

  #require<T>(value: T | undefined): T {
    if (value === undefined) throw new Error(`model '${this.config.id}' is not loaded`);
    return value;
  }
}

/**
 * An error's message, fit for operators and `/ready`: absolute paths shortened
 * to their file name, no stack, bounded length.
 */
export function safeErrorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const withoutPaths = text.replace(/(^|[\s'"`(=])((?:[A-Za-z]:)?[\\/][^\s'"`)]*[\\/]([^\s'"`)\\/]+))/g, (_match, before: string, _path, name: string) => `${before}${name}`);
  return withoutPaths.length > 500 ? `${withoutPaths.slice(0, 497)}...` : withoutPaths;
}
