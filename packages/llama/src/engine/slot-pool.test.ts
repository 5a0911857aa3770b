import { describe, expect, it } from "vitest";
import { SlotPool } from "./slot-pool.js";

const never = () => new AbortController().signal;

describe("SlotPool", () => {
  it("hands out free slots, then queues first-in-first-out", async () => {
    const pool = new SlotPool(["a", "b"], 2);
    const first = await pool.acquire(never());
    const second = await pool.acquire(never());
    expect([first, second].map((result) => ("slot" in result ? result.slot : undefined)).sort()).toEqual(["a", "b"]);

    const order: string[] = [];
    const third = pool.acquire(never()).then((result) => order.push(`third:${"slot" in result ? result.slot : result.reason}`));
    const fourth = pool.acquire(never()).then((result) => order.push(`fourth:${"slot" in result ? result.slot : result.reason}`));
    expect(pool.waitingCount).toBe(2);
    pool.release("b");
    pool.release("a");
    await Promise.all([third, fourth]);
    expect(order).toEqual(["third:b", "fourth:a"]);
  });

  it("refuses at once past the bound of the line, with a retry estimate", async () => {
    const pool = new SlotPool(["only"], 1);
    await pool.acquire(never());
    void pool.acquire(never());
    const refused = await pool.acquire(never());
    expect(refused).toEqual({ reason: "full", retryAfterSeconds: expect.any(Number) });
    if ("retryAfterSeconds" in refused) expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it("lets an aborted job leave the line, making room for another", async () => {
    const pool = new SlotPool(["only"], 1);
    await pool.acquire(never());
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    expect(pool.waitingCount).toBe(1);
    controller.abort();
    expect(await waiting).toEqual({ reason: "aborted" });
    expect(pool.waitingCount).toBe(0);
    const next = pool.acquire(never());
    pool.release("only");
    expect(await next).toEqual({ slot: "only" });
  });

  it("estimates retry time from observed service times", async () => {
    const pool = new SlotPool(["only"], 0);
    const held = await pool.acquire(never());
    await new Promise((resolve) => setTimeout(resolve, 30));
    if ("slot" in held) pool.release(held.slot);
    await pool.acquire(never());
    const refused = await pool.acquire(never());
    // 30 ms of service rounds up to the 1-second floor.
    expect(refused).toEqual({ reason: "full", retryAfterSeconds: 1 });
  });

  it("lets the owner break ties between free slots", async () => {
    // Prefer a "b" slot among the candidates, else the first candidate.
    const pool = new SlotPool(["a1", "b1", "a2"], 0, (free, candidates) => candidates.find((index) => free[index]!.startsWith("b")) ?? candidates[0]!);
    expect(await pool.acquire(never())).toEqual({ slot: "b1" });
    expect(await pool.acquire(never())).toEqual({ slot: "a1" });
    pool.release("b1");
    expect(await pool.acquire(never())).toEqual({ slot: "b1" });
  });

  it("gives a job the free slot its affinity ranks highest, breaking ties as before", async () => {
    const cached = new Map([["warm", 40], ["warmer", 90]]);
    const affinity = (slot: string) => cached.get(slot) ?? 0;
    const pool = new SlotPool(["warm", "cold1", "warmer", "cold2"], 0);
    expect(await pool.acquire(never(), affinity)).toEqual({ slot: "warmer" });
    expect(await pool.acquire(never(), affinity)).toEqual({ slot: "warm" });
    // Only cold slots left: the default rule, the most recently freed.
    expect(await pool.acquire(never(), affinity)).toEqual({ slot: "cold2" });
    pool.release("warmer");
    pool.release("cold2");
    expect(await pool.acquire(never(), affinity)).toEqual({ slot: "warmer" });
    expect(pool.freeSlots()).toEqual(["cold1", "cold2"]);
  });

  it("refuses waiting and later jobs once closed", async () => {
    const pool = new SlotPool(["only"], 2);
    await pool.acquire(never());
    const waiting = pool.acquire(never());
    pool.close();
    expect(await waiting).toEqual({ reason: "closed" });
    expect(await pool.acquire(never())).toEqual({ reason: "closed" });
  });
});
