/**
 * A job signal behaves as an `AbortSignal` does for what job code uses, and
 * hands platform APIs a real one that follows it.
 */
import { describe, expect, it } from "vitest";
import { JobAbortController, toAbortSignal } from "./job-signal.js";

describe("job signals", () => {
  it("tell listeners once, with an abort event, as an AbortController's signal does", () => {
    for (const make of [() => new AbortController(), () => new JobAbortController()]) {
      const controller = make();
      const signal = controller.signal;
      const calls: string[] = [];
      const listener = (event: Event) => calls.push(`function ${event.type}`);
      const removed = () => calls.push("removed");
      signal.addEventListener("abort", listener, { once: true });
      signal.addEventListener("abort", listener);
      signal.addEventListener("abort", { handleEvent: (event: Event) => calls.push(`object ${event.type}`) });
      signal.addEventListener("abort", removed);
      signal.removeEventListener("abort", removed);
      expect(signal.aborted).toBe(false);
      expect(() => signal.throwIfAborted()).not.toThrow();

      controller.abort();
      controller.abort("again");
      signal.addEventListener("abort", () => calls.push("too late"));

      expect(calls).toEqual(["function abort", "object abort"]);
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBeInstanceOf(DOMException);
      expect((signal.reason as DOMException).name).toBe("AbortError");
      expect(() => signal.throwIfAborted()).toThrow(signal.reason as DOMException);
    }
  });

  it("keep the reason they were aborted with", () => {
    const controller = new JobAbortController();
    const reason = new Error("client gone");
    controller.abort(reason);
    expect(controller.signal.reason).toBe(reason);
    expect(() => controller.signal.throwIfAborted()).toThrow(reason);
  });

  it("give platform APIs a real AbortSignal that follows them, made once", async () => {
    const controller = new JobAbortController();
    const real = toAbortSignal(controller.signal);
    expect(real).toBeInstanceOf(AbortSignal);
    expect(toAbortSignal(controller.signal)).toBe(real);
    const told = new Promise((resolve) => real.addEventListener("abort", () => resolve(real.reason)));
    const reason = new Error("stop");
    controller.abort(reason);
    expect(await told).toBe(reason);

    const before = new JobAbortController();
    before.abort("done");
    expect(toAbortSignal(before.signal).aborted).toBe(true);
    expect(toAbortSignal(before.signal).reason).toBe("done");

    const native = new AbortController().signal;
    expect(toAbortSignal(native)).toBe(native);
  });

  it("still tell every listener when one throws, then throw its error", () => {
    const controller = new JobAbortController();
    const calls: string[] = [];
    controller.signal.addEventListener("abort", () => {
      throw new Error("listener failed");
    });
    controller.signal.addEventListener("abort", () => calls.push("second"));
    expect(() => controller.abort()).toThrow("listener failed");
    expect(calls).toEqual(["second"]);
    expect(controller.signal.aborted).toBe(true);
  });
});
