import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { metricsNow } from "./clock.js";

describe("metricsNow", () => {
  afterEach(() => vi.restoreAllMocks());

  it("reads the clock once for a run of synchronous code and the promise callbacks it sets off", async () => {
    await sleep(1);
    const read = vi.spyOn(performance, "now");
    const first = metricsNow();
    const inChain = await Promise.resolve()
      .then(() => metricsNow())
      .then(async (value) => {
        await null;
        return [value, metricsNow()];
      });
    expect(inChain).toEqual([first, first]);
    expect(read).toHaveBeenCalledTimes(1);
  });

  it("reads it afresh across I/O or a timer: the next token's time is its own", async () => {
    const before = metricsNow();
    await sleep(5);
    const after = metricsNow();
    expect(after - before).toBeGreaterThanOrEqual(4);
    await new Promise((resolve) => setImmediate(resolve));
    const read = vi.spyOn(performance, "now");
    metricsNow();
    expect(read).toHaveBeenCalledTimes(1);
  });
});
