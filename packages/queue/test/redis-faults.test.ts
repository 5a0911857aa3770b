/**
 * Redis faults, on a private redis-server this test starts, stops and starts
 * again (no persistence: a restart loses every key).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BullmqDispatcher, llamaQueueName, serveBackend, type BackendServer } from "../src/index.js";
import { dispatcherTimings, workerTimings } from "./fleet-timings.js";
import { consume, waitFor, waitForLiveWorkers } from "./helpers.js";
import { TEST_MODEL, collect, errorOf, scriptJob } from "./jobs.js";
import { BlackholeProxy, PrivateRedis, randomPrefix } from "./redis-fixture.js";
import { ScriptedBackend } from "./scripted-backend.js";

const queueName = llamaQueueName(TEST_MODEL);

describe("Redis faults", () => {
  let redis: PrivateRedis;
  let prefix: string;
  let dispatcher: BullmqDispatcher | undefined;
  let server: BackendServer | undefined;

  beforeEach(async () => {
    redis = await PrivateRedis.create();
    prefix = randomPrefix();
  });

  afterEach(async () => {
    await dispatcher?.close();
    await server?.close({ drainTimeoutMs: 0 });
    dispatcher = undefined;
    server = undefined;
    await redis.dispose();
  });

  function startWorker(url = redis.url): BackendServer {
    server = serveBackend(new ScriptedBackend([TEST_MODEL], "a"), { connection: url, prefix, concurrencyPerModel: 2, ...workerTimings });
    return server;
  }

  it("builds with Redis down, answers 503 meanwhile, and becomes ready when Redis appears", async () => {
    dispatcher = new BullmqDispatcher({ connection: redis.url, prefix, ...dispatcherTimings });

    expect(await dispatcher.ready()).toBe(false);
    const refused = await collect(dispatcher.submit(scriptJob("echo:3")));
    expect(refused).toHaveLength(1);
    expect(errorOf(refused)).toMatchObject({ status: 503, code: "queue_unavailable", retryAfterSeconds: 2 });

    await redis.start();
    startWorker();
    await waitFor("dispatcher ready", () => dispatcher!.ready(), 5000);
    await waitForLiveWorkers(redis.url, prefix, queueName, 1);
    const events = await collect(dispatcher.submit(scriptJob("echo:3")));
    expect(events.at(-1)).toMatchObject({ type: "finish", completionTokens: 3 });
  });

  it("ends in-flight streams with an error when Redis is lost, refuses new work, and recovers by itself when Redis returns", async () => {
    await redis.start();
    dispatcher = new BullmqDispatcher({ connection: redis.url, prefix, ...dispatcherTimings });
    startWorker();
    await waitFor("dispatcher ready", () => dispatcher!.ready(), 5000);
    await waitForLiveWorkers(redis.url, prefix, queueName, 1);
    const inFlight = consume(dispatcher.submit(scriptJob("hang")));
    expect(await inFlight.first).toMatchObject({ type: "accepted" });

    const lostAt = Date.now();
    await redis.stop();

    const events = await inFlight.all;
    expect(events.at(-1)).toMatchObject({ type: "error", error: { status: 503, code: "queue_unavailable" } });
    expect(Date.now() - lostAt).toBeLessThan(3000);
    const refused = await collect(dispatcher.submit(scriptJob("echo:1")));
    expect(errorOf(refused)).toMatchObject({ status: 503 });
    expect(errorOf(refused)?.retryAfterSeconds).toBeGreaterThan(0);
    expect(await dispatcher.ready()).toBe(false);

    // Longer than the worker's blocking read (drainDelay 1 s + 1 s): the case of BullMQ #4585.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await redis.start();
    const restartedAt = Date.now();

    await waitFor("dispatcher ready again", () => dispatcher!.ready(), 5000);
    await waitForLiveWorkers(redis.url, prefix, queueName, 1);
    const recovered = await collect(dispatcher.submit(scriptJob("echo:3")));
    expect(recovered.at(-1)).toMatchObject({ type: "finish", completionTokens: 3 });
    expect(Date.now() - restartedAt).toBeLessThan(8000);
  });

  it("survives a network black hole (half-open connections): errors instead of hanging, then recovers", async () => {
    await redis.start();
    const proxy = await BlackholeProxy.create(redis.url);
    try {
      dispatcher = new BullmqDispatcher({ connection: proxy.url, prefix, ...dispatcherTimings });
      startWorker(proxy.url);
      await waitFor("dispatcher ready", () => dispatcher!.ready(), 5000);
      await waitForLiveWorkers(redis.url, prefix, queueName, 1);
      const inFlight = consume(dispatcher.submit(scriptJob("hang")));
      expect(await inFlight.first).toMatchObject({ type: "accepted" });

      const cutAt = Date.now();
      proxy.blackhole();

      const events = await inFlight.all;
      expect(events.at(-1)).toMatchObject({ type: "error", error: { status: 503 } });
      expect(Date.now() - cutAt).toBeLessThan(6000);
      await waitFor("ready() false", async () => !(await dispatcher!.ready()), 5000);
      const refused = await collect(dispatcher.submit(scriptJob("echo:1")));
      expect(errorOf(refused)).toMatchObject({ status: 503 });

      proxy.restore();
      const restoredAt = Date.now();
      await waitFor("dispatcher ready again", () => dispatcher!.ready(), 8000);
      await waitForLiveWorkers(redis.url, prefix, queueName, 1);
      await waitFor(
        "a round trip",
        async () => (await collect(dispatcher!.submit(scriptJob("echo:3")))).at(-1)?.type === "finish",
        15_000,
        200,
      );
      expect(Date.now() - restoredAt).toBeLessThan(15_000);
    } finally {
      await dispatcher?.close();
      await server?.close({ drainTimeoutMs: 0 });
      dispatcher = undefined;
      server = undefined;
      await proxy.close();
    }
  });
});
