/**
 * Redis for the fleet tests: the shared one (REDIS_URL, else 127.0.0.1:6379)
 * with a random key prefix per test, or a private redis-server for the tests
 * that stop and restart it. Only keys under the test's own prefix are ever
 * deleted; nothing is flushed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { FleetKeys } from "../src/index.js";

export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export function randomPrefix(): string {
  return `sbtest-${randomUUID().slice(0, 12)}`;
}

/** Deletes every key under `prefix:` (SCAN + UNLINK), and nothing else. */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** Waits until some worker's heartbeat is live on each queue (the gateway answers 503 before that). */
export async function waitForLiveWorkers(url: string, prefix: string, queues: readonly string[], timeoutMs = 50_000): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  const keys = new FleetKeys(prefix);
  const deadline = Date.now() + timeoutMs;
  try {
    for (const queue of queues) {
      while ((await redis.zcount(keys.liveWorkers(queue), `(${Date.now()}`, "+inf")) < 1) {
        if (Date.now() > deadline) throw new Error(`no worker went live on queue '${queue}' within ${timeoutMs} ms`);
        await sleep(25);
      }
    }
  } finally {
    redis.disconnect();
  }
}

/** Waits until each dispatcher has reached Redis (before that it answers 503, as a starting gateway should). */
export async function waitForReady(dispatchers: readonly { ready(): Promise<boolean> }[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const dispatcher of dispatchers) {
    while (!(await dispatcher.ready())) {
      if (Date.now() > deadline) throw new Error(`a dispatcher did not reach Redis within ${timeoutMs} ms`);
      await sleep(25);
    }
  }
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
    server.on("error", reject);
  });
}

/** A redis-server of our own on a spare port, which a test may stop and start again. */
export class PrivateRedis {
  readonly url: string;
  #process: ChildProcess | undefined;
  readonly #dir: string;

  private constructor(readonly port: number) {
    this.url = `redis://127.0.0.1:${port}`;
    this.#dir = mkdtempSync(join(tmpdir(), "sb-redis-"));
  }

  static async create(): Promise<PrivateRedis> {
    if (spawnSync("sh", ["-c", "command -v redis-server"], { stdio: "ignore" }).status !== 0) {
      throw new Error("These tests start a private Redis and need `redis-server` on PATH (Debian/Ubuntu: apt-get install redis-server).");
    }
    return new PrivateRedis(await freePort());
  }

  async start(): Promise<void> {
    // No persistence: a restart loses every key, the harshest case for the transport.
    this.#process = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.#dir], {
      stdio: "ignore",
    });
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    for (let tries = 0; tries < 100; tries++) {
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        await sleep(50);
      }
    }
    probe.disconnect();
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy in front of Redis that can black-hole the network: existing
 * connections stop carrying bytes without being closed (half-open, as after a
 * partition or a host that vanished), and new ones are cut at once. After
 * `restore()`, new connections work; the black-holed ones stay dead.
 */
export class BlackholeProxy {
  readonly url: string;
  #blackholed = false;
  readonly #dead = new Set<Socket>();
  readonly #live = new Set<[Socket, Socket]>();

  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async create(target: string): Promise<BlackholeProxy> {
    const upstream = new URL(target);
    const port = await freePort();
    let proxy!: BlackholeProxy;
    const server = createServer((client) => {
      if (proxy.#blackholed) {
        client.destroy();
        return;
      }
      const redis = createConnection({ host: upstream.hostname, port: Number(upstream.port || 6379) });
      const pair: [Socket, Socket] = [client, redis];
      proxy.#live.add(pair);
      client.pipe(redis);
      redis.pipe(client);
      const close = () => {
        proxy.#live.delete(pair);
        client.destroy();
        redis.destroy();
      };
      client.on("error", close).on("close", close);
      redis.on("error", close).on("close", close);
    });
    proxy = new BlackholeProxy(server, port);
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return proxy;
  }

  blackhole(): void {
    this.#blackholed = true;
    for (const [client, redis] of this.#live) {
      client.unpipe(redis);
      redis.unpipe(client);
      // Keep both ends open and swallow what arrives: nothing ever answers.
      client.removeAllListeners("data").on("data", () => undefined);
      redis.removeAllListeners("data").on("data", () => undefined);
      this.#dead.add(client).add(redis);
    }
    this.#live.clear();
  }

  restore(): void {
    this.#blackholed = false;
  }

  async close(): Promise<void> {
    for (const socket of this.#dead) socket.destroy();
    for (const [client, redis] of this.#live) {
      client.destroy();
      redis.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
