import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { FleetKeys } from "../src/index.js";

export async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, stepMs = 25): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Waits until `count` workers are live on a queue, as the gateway would see them. */
export async function waitForLiveWorkers(url: string, prefix: string, queue: string, count: number, timeoutMs = 10_000): Promise<void> {
  const redis = new Redis(url);
  try {
    const key = new FleetKeys(prefix).liveWorkers(queue);
    await waitFor(`${count} live worker(s) on ${queue}`, async () => (await redis.zcount(key, `(${Date.now()}`, "+inf")) >= count, timeoutMs);
  } finally {
    redis.disconnect();
  }
}

/** Starts consuming a stream in the background; `first` resolves with the first event. */
export function consume<T>(events: AsyncIterable<T>): { all: Promise<T[]>; first: Promise<T | undefined> } {
  let resolveFirst!: (event: T | undefined) => void;
  const first = new Promise<T | undefined>((resolve) => (resolveFirst = resolve));
  const all = (async () => {
    const seen: T[] = [];
    for await (const event of events) {
      if (seen.length === 0) resolveFirst(event);
      seen.push(event);
    }
    resolveFirst(undefined);
    return seen;
  })();
  return { all, first };
}
