/**
 * The worker's event writer against the real Redis: order, coalescing, the
 * end marker, and the claim that lets only one attempt's output through.
 */
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventWriter, type WriterStop } from "../src/bullmq/event-writer.js";
import { FleetKeys } from "../src/index.js";
import { decodeBatch, type EventBatch } from "../src/bullmq/wire.js";
import { deletePrefix, randomPrefix, redisUrl } from "./redis-fixture.js";

describe("EventWriter", () => {
  let prefix: string;
  let redis: Redis;
  let keys: FleetKeys;
  let inbox: string;
  let stateKey: string;

  beforeEach(async () => {
    prefix = randomPrefix();
    redis = new Redis(redisUrl);
    keys = new FleetKeys(prefix);
    inbox = keys.inbox("gateway");
    stateKey = keys.jobState("job-1");
    await redis.xadd(inbox, "*", "hello", "1");
    await redis.hset(stateKey, "w", "1");
  });

  afterEach(async () => {
    redis.disconnect();
    await deletePrefix(redisUrl, prefix);
  });

  function writer(stops: WriterStop[] = [], acceptedHoldMs?: number) {
    return new EventWriter({ redis, inbox, stateKey, jobId: "job-1", inboxMaxLength: 1000, onStop: (reason) => stops.push(reason), ...(acceptedHoldMs === undefined ? {} : { acceptedHoldMs }) });
  }

  async function batches(): Promise<EventBatch[]> {
    const entries = await redis.xrange(inbox, "-", "+");
    return entries.flatMap(([, fields]) => {
      const batch = decodeBatch(fields);
      return batch ? [batch] : [];
    });
  }

  it("writes events in order with sequence numbers and one end marker, coalescing deltas made during a write", async () => {
    const events = writer();
    events.begin(1);
    events.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    for (let index = 0; index < 500; index++) events.push({ type: "text-delta", index: 0, text: `${index},` });
    events.push({ type: "finish", index: 0, finishReason: "stop", completionTokens: 500 });
    await events.end();

    const written = await batches();
    expect(written.map((batch) => batch.seq)).toEqual(written.map((_, index) => index));
    expect(written.map((batch) => batch.end)).toEqual([...written.slice(1).map(() => false), true]);
    const all = written.flatMap((batch) => batch.events);
    expect(all[0]).toMatchObject({ type: "accepted" });
    expect(all.map((event) => (event.type === "text-delta" ? event.text : "")).join("")).toBe(Array.from({ length: 500 }, (_, index) => `${index},`).join(""));
    expect(all.at(-1)).toMatchObject({ type: "finish", completionTokens: 500 });
    // 502 events pushed while earlier writes were in flight: a handful of entries, not hundreds.
    expect(written.length).toBeLessThanOrEqual(3);
    // The attempt owned the output and finished: the "still wanted" key went with the last entry.
    expect(await redis.exists(stateKey)).toBe(0);
  });

  it("holds events until the attempt is known", async () => {
    const events = writer();
    events.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await batches()).toEqual([]);

    events.begin(2);
    await events.end();

    const written = await batches();
    expect(written.every((batch) => batch.attempt === 2)).toBe(true);
    expect(written.flatMap((batch) => batch.events)).toEqual([{ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 }]);
    expect(written.at(-1)?.end).toBe(true);
  });

  it("lets only the first attempt that sends output through; a later attempt stops without writing output", async () => {
    const first = writer();
    first.begin(1);
    first.push({ type: "text-delta", index: 0, text: "one" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const secondStops: WriterStop[] = [];
    const second = writer(secondStops);
    second.begin(2);
    second.push({ type: "text-delta", index: 0, text: "two" });
    await second.end();
    await first.end();

    expect(secondStops).toEqual(["superseded"]);
    const written = await batches();
    expect(written.every((batch) => batch.attempt === 1)).toBe(true);
    expect(written.flatMap((batch) => batch.events)).toEqual([{ type: "text-delta", index: 0, text: "one" }]);
  });

  it("stops when the job is no longer wanted or the gateway's inbox is gone", async () => {
    await redis.del(stateKey);
    const unwanted: WriterStop[] = [];
    const events = writer(unwanted);
    events.begin(1);
    events.push({ type: "text-delta", index: 0, text: "x" });
    await events.end();
    expect(unwanted).toEqual(["not-wanted"]);

    await redis.hset(stateKey, "w", "1");
    await redis.del(inbox);
    const orphaned: WriterStop[] = [];
    const late = writer(orphaned);
    late.begin(1);
    late.push({ type: "text-delta", index: 0, text: "x" });
    await late.end();
    expect(orphaned).toEqual(["gateway-gone"]);
    expect(await redis.exists(inbox)).toBe(0);
  });

  it("steps aside at shutdown only while none of its output is out: then it writes nothing more", async () => {
    // `accepted` goes out at once; the delta waits behind its write.
    const early = writer([], 0);
    early.begin(1);
    early.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    early.push({ type: "text-delta", index: 0, text: "not yet sent" });

    expect(await early.stepAside()).toBe(true);
    early.push({ type: "text-delta", index: 0, text: "after" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const written = (await batches()).flatMap((batch) => batch.events);
    expect(written.some((event) => event.type === "text-delta")).toBe(false);
    // Nobody owns the output: another attempt may still claim it.
    expect(await redis.hexists(stateKey, "o")).toBe(0);

    const late = writer();
    late.begin(2);
    late.push({ type: "text-delta", index: 0, text: "sent" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await late.stepAside()).toBe(false);
    late.push({ type: "finish", index: 0, finishReason: "stop", completionTokens: 1 });
    await late.end();
    const all = (await batches()).filter((batch) => batch.attempt === 2);
    expect(all.at(-1)?.end).toBe(true);
    expect(all.flatMap((batch) => batch.events).map((event) => event.type)).toEqual(["text-delta", "finish"]);
  });

  it("checks its first batch even without output: a re-run of a job another attempt answers stops before writing anything", async () => {
    await redis.hset(stateKey, "o", "1");
    const stops: WriterStop[] = [];
    const rerun = writer(stops);
    rerun.begin(2);
    rerun.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    await rerun.end();

    expect(stops).toEqual(["superseded"]);
    expect(await batches()).toEqual([]);
  });

  it("writes a job whose events are all in before it begins as one entry, end marker included", async () => {
    const events = writer();
    events.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    events.push({ type: "text-delta", index: 0, text: "all" });
    events.push({ type: "finish", index: 0, finishReason: "stop", completionTokens: 1 });
    events.seal();
    events.begin(1);
    await events.end();

    const written = await batches();
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ attempt: 1, seq: 0, end: true });
    expect(written[0]!.events.map((event) => event.type)).toEqual(["accepted", "text-delta", "finish"]);
    expect(await redis.exists(stateKey)).toBe(0);
  });

  it("holds a lone accepted for the first output, so a short job's start and output share one write that dates the start", async () => {
    const events = writer([], 200);
    events.begin(1);
    events.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await batches()).toEqual([]);
    events.push({ type: "text-delta", index: 0, text: "hi" });
    events.push({ type: "finish", index: 0, finishReason: "stop", completionTokens: 1 });
    await events.end();

    const written = await batches();
    expect(written.map((batch) => batch.events.map((event) => event.type))).toEqual([["accepted", "text-delta"], ["finish"]]);
    // Held since the push, 30 ms and more: the gateway dates the job's start back by that much.
    expect(written[0]!.heldMs).toBeGreaterThanOrEqual(25);
    expect(written.slice(1).every((batch) => batch.heldMs === undefined)).toBe(true);
    expect(written.at(-1)!.end).toBe(true);
  });

  it("sends a lone accepted once its hold is over, while the prompt is still being read", async () => {
    const events = writer([], 20);
    events.begin(1);
    events.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    await new Promise((resolve) => setTimeout(resolve, 120));
    const written = await batches();
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ seq: 0, end: false, events: [{ type: "accepted" }] });
    expect(written[0]!.heldMs).toBeGreaterThanOrEqual(18);
    await events.end();
  });

  it("sends the last batch right behind a write in flight instead of waiting for its reply, in order", async () => {
    const sent: string[] = [];
    const spy = new Redis(redisUrl);
    spy.on("error", () => undefined);
    const events = new EventWriter({ redis: spy, inbox, stateKey, jobId: "job-1", inboxMaxLength: 1000, onStop: () => undefined, acceptedHoldMs: 0 });
    // Hold every reply back until both writes are sent: the second must not wait for the first.
    const original = spy.sendCommand.bind(spy);
    spy.sendCommand = ((command: { name: string }) => {
      sent.push(command.name);
      return original(command as never);
    }) as typeof spy.sendCommand;
    events.begin(1);
    events.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    events.push({ type: "text-delta", index: 0, text: "a" });
    events.push({ type: "finish", index: 0, finishReason: "stop", completionTokens: 1 });
    const ending = events.end();
    // Both batches are on the connection before any reply was read.
    expect(sent.filter((name) => name === "eval")).toHaveLength(2);
    await ending;
    spy.disconnect();

    const written = await batches();
    expect(written.map((batch) => batch.seq)).toEqual([0, 1]);
    expect(written.map((batch) => batch.end)).toEqual([false, true]);
    expect(written.map((batch) => batch.events.map((event) => event.type))).toEqual([["accepted"], ["text-delta", "finish"]]);
    expect(await redis.exists(stateKey)).toBe(0);
  });

  it("after a refused check, a batch sent behind it is refused too: no gap reaches the gateway", async () => {
    await redis.hset(stateKey, "o", "1");
    const stops: WriterStop[] = [];
    const rerun = writer(stops, 0);
    rerun.begin(2);
    rerun.push({ type: "accepted", jobId: "job-1", model: "m", promptTokens: 3 });
    rerun.push({ type: "text-delta", index: 0, text: "late" });
    await rerun.end();
    expect(stops).toEqual(["superseded"]);
    expect(await batches()).toEqual([]);
  });
});
