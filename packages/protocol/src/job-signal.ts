/**
 * A job's cancellation: the part of `AbortSignal` that job code uses, for a
 * fraction of its cost.
 *
 * Every job needs a signal (a client that goes away stops its generation),
 * yet in Node 20 an `AbortSignal` is expensive: ~3.5 µs to create (its
 * prototype is swapped after construction) and ~1.6 µs more for its first
 * listener, and a streamed remote chat measured 11-15 µs more CPU with one
 * than with a plain object in its place, paid again by the worker of each
 * job in fleet mode. {@link JobAbortController} is a small object with the
 * same behaviour for `aborted`, `reason`, `throwIfAborted` and `abort`
 * listeners. Where a platform API needs a real `AbortSignal` (fetch,
 * node-llama-cpp, `AbortSignal.any`), {@link toAbortSignal} makes one that
 * follows it, on first use. A real `AbortSignal` is a `JobSignal` too, so
 * callers may pass either.
 */

/** What listens for an abort: a function or an object with `handleEvent`, as with `EventTarget`. */
export type AbortListener = ((event: Event) => void) | { handleEvent(event: Event): void };

/** The part of `AbortSignal` a job's code may use. */
export interface JobSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: "abort", listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: AbortListener): void;
}

/** A job signal made by {@link JobAbortController}. */
class LightAbortSignal implements JobSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: AbortListener[] | undefined;
  #real: AbortController | undefined;

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  addEventListener(type: "abort", listener: AbortListener): void {
    // As EventTarget: a listener added after the abort never runs; one added twice runs once.
    if (type !== "abort" || this.aborted) return;
    const listeners = (this.#listeners ??= []);
    if (!listeners.includes(listener)) listeners.push(listener);
  }

  removeEventListener(type: "abort", listener: AbortListener): void {
    const listeners = this.#listeners;
    if (type !== "abort" || !listeners) return;
    const index = listeners.indexOf(listener);
    if (index !== -1) listeners.splice(index, 1);
  }

  /** A real `AbortSignal` that aborts with this one. */
  asAbortSignal(): AbortSignal {
    if (!this.#real) {
      this.#real = new AbortController();
      if (this.aborted) this.#real.abort(this.reason);
    }
    return this.#real.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    this.#real?.abort(reason);
    if (!listeners) return;
    const event = new Event("abort");
    let failure: { error: unknown } | undefined;
    for (const listener of listeners) {
      try {
        if (typeof listener === "function") listener.call(this, event);
        else listener.handleEvent(event);
      } catch (error) {
        // The other listeners still run; the first error is not swallowed.
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}

/** Makes a {@link JobSignal} and aborts it: `AbortController`'s interface. */
export class JobAbortController {
  readonly signal: JobSignal;
  readonly #signal: LightAbortSignal;

  constructor() {
    this.#signal = new LightAbortSignal();
    this.signal = this.#signal;
  }

  /**
   * Aborts the signal (once); without a reason, with the `AbortError` an
   * `AbortController` would use. Every listener runs; if one threw, its
   * error is thrown from here afterwards.
   */
  abort(reason: unknown = new DOMException("This operation was aborted", "AbortError")): void {
    this.#signal.abort(reason);
  }
}

/** A real `AbortSignal` for a job signal: itself when it is one, else one made to follow it. */
export function toAbortSignal(signal: JobSignal): AbortSignal {
  return signal instanceof LightAbortSignal ? signal.asAbortSignal() : (signal as AbortSignal);
}
