/**
 * The clock metrics read: `performance.now()`, read once per run of
 * synchronous code and the promise callbacks it sets off, and shared by every
 * reading in that run (forgotten once those callbacks have drained: a
 * microtask queues a `process.nextTick`, and ticks wait for the microtask
 * queue to empty). A request's metrics read the clock twice instead of eight
 * times: ~0.1 µs a read here, several times that on hosts whose clock is a
 * system call. Readings in one run are microseconds apart, far below any
 * histogram bucket; readings across I/O (the next token, the end of a
 * response) are always fresh.
 */
import { microtask } from "./microtask.js";

let cached: number | undefined;

function forget(): void {
  cached = undefined;
}

function forgetAfterDrain(): void {
  process.nextTick(forget);
}

/** `performance.now()`, shared with the other readings of this run. */
export function metricsNow(): number {
  if (cached === undefined) {
    cached = performance.now();
    microtask(forgetAfterDrain);
  }
  return cached;
}
