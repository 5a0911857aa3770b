/**
 * A fixed set of slots (llama.cpp sequences) handed out one job at a time,
 * with a bounded first-in-first-out line for jobs that find none free.
 */

/** Why {@link SlotPool.acquire} gave no slot. */
export type AcquireRefusal =
  | { reason: "full"; retryAfterSeconds: number }
  | { reason: "aborted" }
  | { reason: "closed" };

export type AcquireResult<T> = { slot: T } | AcquireRefusal;

interface Waiter<T> {
  resolve: (result: AcquireResult<T>) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/**
 * Chooses among equally good free slots: returns one of `candidates` (indices
 * into `free`, in the order the slots were freed).
 */
export type TieBreak<T> = (free: readonly T[], candidates: readonly number[]) => number;

export class SlotPool<T> {
  readonly #free: T[];
  readonly #tieBreak: TieBreak<T>;
  readonly #size: number;
  readonly #maxWaiting: number;
  readonly #line: Waiter<T>[] = [];
  readonly #startedAt = new Map<T, number>();
  #closed = false;
  /** Moving average of how long a job holds a slot, in milliseconds. */
  #serviceMs: number | undefined;

  /**
   * @param tieBreak chooses which of the free slots a job's affinity ranks
   *   best it gets; the most recently freed one by default.
   */
  constructor(slots: T[], maxWaiting: number, tieBreak: TieBreak<T> = (_free, candidates) => candidates.at(-1)!) {
    this.#free = [...slots];
    this.#tieBreak = tieBreak;
    this.#size = slots.length;
    this.#maxWaiting = Math.max(0, maxWaiting);
  }

  get size(): number {
    return this.#size;
  }

  get freeCount(): number {
    return this.#free.length;
  }

  /** The free slots, least recently freed first. */
  freeSlots(): readonly T[] {
    return [...this.#free];
  }

  get waitingCount(): number {
    return this.#line.length;
  }

  /**
   * A free slot now, a place in line, or a refusal: `full` when the line is at
   * its bound (with an estimate of when to retry), `aborted` when the signal
   * fires first (the job leaves the line). Among free slots the job gets one
   * that `affinity` scores highest (a slot already holding its prompt's
   * start); a job in line takes the first slot freed.
   */
  acquire(signal: AbortSignal, affinity?: (slot: T) => number): Promise<AcquireResult<T>> {
    if (this.#closed) return Promise.resolve({ reason: "closed" });
    if (signal.aborted) return Promise.resolve({ reason: "aborted" });
    if (this.#free.length > 0) {
      const [slot] = this.#free.splice(this.#choose(affinity), 1) as [T];
      return Promise.resolve({ slot: this.#take(slot) });
    }
    if (this.#line.length >= this.#maxWaiting) return Promise.resolve({ reason: "full", retryAfterSeconds: this.retryAfterSeconds() });
    return new Promise((resolve) => {
      const waiter: Waiter<T> = {
        resolve,
        signal,
        onAbort: () => {
          const index = this.#line.indexOf(waiter);
          if (index >= 0) this.#line.splice(index, 1);
          resolve({ reason: "aborted" });
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#line.push(waiter);
    });
  }

  /** Returns a slot; the first job in line gets it at once. */
  release(slot: T): void {
    const startedAt = this.#startedAt.get(slot);
    this.#startedAt.delete(slot);
    if (startedAt !== undefined) {
      const elapsed = performance.now() - startedAt;
      this.#serviceMs = this.#serviceMs === undefined ? elapsed : this.#serviceMs * 0.8 + elapsed * 0.2;
    }
    if (this.#closed) return;
    const waiter = this.#line.shift();
    if (waiter) {
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      waiter.resolve({ slot: this.#take(slot) });
      return;
    }
    this.#free.push(slot);
  }

  /**
   * Seconds until a newcomer would likely get a slot: everyone in line plus
   * the newcomer, served `size` at a time at the observed service time.
   */
  retryAfterSeconds(): number {
    const serviceMs = this.#serviceMs ?? 1000;
    const rounds = Math.ceil((this.#line.length + 1) / this.#size);
    return Math.min(60, Math.max(1, Math.ceil((rounds * serviceMs) / 1000)));
  }

  /** Refuses everyone in line and every later request. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#line.splice(0)) {
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      waiter.resolve({ reason: "closed" });
    }
  }

  #choose(affinity: ((slot: T) => number) | undefined): number {
    let candidates = this.#free.map((_slot, index) => index);
    if (affinity) {
      const scores = this.#free.map(affinity);
      const best = Math.max(...scores);
      candidates = candidates.filter((index) => scores[index] === best);
    }
    return candidates.length === 1 ? candidates[0]! : this.#tieBreak(this.#free, candidates);
  }

  #take(slot: T): T {
    this.#startedAt.set(slot, performance.now());
    return slot;
  }
}
