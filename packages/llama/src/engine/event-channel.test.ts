import { describe, expect, it } from "vitest";
import { EventChannel } from "./event-channel.js";

const joinStrings = (last: string, next: string) => (last.startsWith("+") && next.startsWith("+") ? last + next.slice(1) : undefined);

describe("EventChannel", () => {
  it("delivers pushed items in order, then ends on close", async () => {
    const channel = new EventChannel<number>();
    channel.push(1);
    setImmediate(() => {
      channel.push(2);
      channel.close();
    });
    const seen: number[] = [];
    for await (const item of channel) seen.push(item);
    expect(seen).toEqual([1, 2]);
  });

  it("hands an item to a waiting reader without buffering it", async () => {
    const channel = new EventChannel<string>();
    const iterator = channel[Symbol.asyncIterator]();
    const next = iterator.next();
    channel.push("now");
    expect(await next).toEqual({ value: "now", done: false });
  });

  it("merges waiting items a slow reader has not taken", async () => {
    const channel = new EventChannel<string>({ coalesce: joinStrings });
    for (const piece of ["+a", "+b", "+c", "x", "+d"]) channel.push(piece);
    channel.close();
    const seen: string[] = [];
    for await (const item of channel) seen.push(item);
    expect(seen).toEqual(["+abc", "x", "+d"]);
  });

  it("throws a failure to the reader after the buffered items", async () => {
    const channel = new EventChannel<number>();
    channel.push(1);
    channel.fail(new Error("boom"));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const item of channel) seen.push(item);
      })(),
    ).rejects.toThrow("boom");
    expect(seen).toEqual([1]);
  });

  it("drops pushes once the reader has gone", async () => {
    const channel = new EventChannel<number>();
    channel.push(1);
    for await (const item of channel) {
      expect(item).toBe(1);
      break;
    }
    channel.push(2);
    expect(channel.closed).toBe(true);
  });
});
