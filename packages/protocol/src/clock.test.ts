import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { metricsNow } from "./clock.js";

describe("metricsNow", () => {
  it("is performance.now()'s clock: the same origin, moving with time", async () => {
    const before = performance.now();
    const reading = metricsNow();
    await sleep(5);
    const later = metricsNow();
    expect(reading).toBeGreaterThanOrEqual(before);
    expect(reading).toBeLessThanOrEqual(performance.now());
    expect(later - reading).toBeGreaterThanOrEqual(4);
  });
});
