/**
 * A single-consumer push queue: llama callbacks push, the transport reads with
 * `for await`. No timers: a pushed item reaches a waiting reader on the next
 * microtask.
 *
 * Backpressure: generation never waits for the reader (llama.cpp decodes on
 * its own schedule), so a slow reader lets items pile up. Consecutive items
 * that {@link EventChannelOptions.coalesce} can merge (text deltas of one
 * choice) are joined while they wait, so the buffer holds a few items whose
 * total text is bounded by the job's `maxTokens`, never one item per token.
 */
export interface EventChannelOptions<T> {
  /** Merges `next` into the waiting `last` when possible; returns undefined when it cannot. */
  coalesce?: (last: T, next: T) => T | undefined;
}

export class EventChannel<T> implements AsyncIterable<T> {
  readonly #buffer: T[] = [];
  readonly #coalesce: EventChannelOptions<T>["coalesce"];
  #reader: ((result: IteratorResult<T>) => void) | undefined;
  #rejectReader: ((error: unknown) => void) | undefined;
  #closed = false;
  #failure: { error: unknown } | undefined;

  constructor(options: EventChannelOptions<T> = {}) {
    this.#coalesce = options.coalesce;
  }

  /** Adds an item; ignored once the channel is closed. */
  push(item: T): void {
    if (this.#closed) return;
    if (this.#reader) {
      const reader = this.#reader;
      this.#reader = this.#rejectReader = undefined;
      reader({ value: item, done: false });
      return;
    }
    const last = this.#buffer.at(-1);
    if (last !== undefined && this.#coalesce) {
      const merged = this.#coalesce(last, item);
      if (merged !== undefined) {
        this.#buffer[this.#buffer.length - 1] = merged;
        return;
      }
    }
    this.#buffer.push(item);
  }

  /** Ends the stream after the buffered items. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reader && this.#buffer.length === 0) {
      const reader = this.#reader;
      this.#reader = this.#rejectReader = undefined;
      reader({ value: undefined, done: true });
    }
  }

  /** Ends the stream with an error, thrown to the reader after the buffered items. */
  fail(error: unknown): void {
    if (this.#closed) return;
    this.#failure = { error };
    this.#closed = true;
    if (this.#rejectReader && this.#buffer.length === 0) {
      const reject = this.#rejectReader;
      this.#reader = this.#rejectReader = undefined;
      reject(error);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  #next(): Promise<IteratorResult<T>> {
    if (this.#buffer.length > 0) return Promise.resolve({ value: this.#buffer.shift()!, done: false });
    if (this.#failure) {
      const { error } = this.#failure;
      this.#failure = undefined;
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#reader) return Promise.reject(new Error("EventChannel has a single reader"));
    return new Promise((resolve, reject) => {
      this.#reader = resolve;
      this.#rejectReader = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.#next(),
      return: async () => {
        this.#closed = true;
        this.#buffer.length = 0;
        return { value: undefined, done: true };
      },
    };
  }
}
