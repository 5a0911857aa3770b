/**
 * The clock metrics read: `performance.now()`, through `node:perf_hooks`'
 * export. The global `performance` is a lazy getter on `globalThis`: each
 * use of it ran two getters and cost more than reading the clock itself.
 * One function, so tests can stub every metrics reading in one place.
 */
import { performance } from "node:perf_hooks";

/** `performance.now()`: milliseconds, monotonic. */
export function metricsNow(): number {
  return performance.now();
}
