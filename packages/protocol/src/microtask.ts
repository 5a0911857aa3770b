/**
 * Runs `callback` as a microtask, after the synchronous code and the promise
 * callbacks already queued. Node's `queueMicrotask` does the same but makes
 * an AsyncResource and a bound function per call; the reaction of a settled
 * promise costs a fraction of that, which counts on per-request and
 * per-chunk paths. A callback that throws surfaces as an unhandled rejection.
 */
const settled = Promise.resolve();

export function microtask(callback: () => void): void {
  void settled.then(callback);
}
