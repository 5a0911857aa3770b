import { describe, expect, it } from "vitest";
import { microtask } from "./microtask.js";

describe("microtask", () => {
  it("runs after the synchronous code and the promise callbacks queued before it, before timers and I/O", async () => {
    const order: string[] = [];
    const immediate = new Promise<void>((resolve) => setImmediate(() => (order.push("immediate"), resolve())));
    void Promise.resolve().then(() => order.push("promise queued first"));
    microtask(() => order.push("microtask"));
    order.push("sync");
    await immediate;
    expect(order).toEqual(["sync", "promise queued first", "microtask", "immediate"]);
  });
});
