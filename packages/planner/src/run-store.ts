/**
 * Where router run records are kept, for `GET /v1/orchestrations/{id}` and
 * the console. The router writes a run as it goes (plan, selections, task
 * states) and once more at its end; gateways read it. In memory for the
 * embedded default; in the fleet's Redis in fleet mode, so any gateway can
 * answer for a run any router worker made.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { RunRecord } from "./types.js";

export interface RunStore {
  /** Writes (or overwrites) a run's record. */
  save(record: RunRecord): Promise<void>;
  /** One run, or undefined when unknown or expired. */
  get(id: string): Promise<RunRecord | undefined>;
  /** The most recent runs, newest first, at most `limit`. */
  list(limit: number): Promise<RunRecord[]>;
  close(): Promise<void>;
}

export interface RunStoreLimits {
  /** How long a record stays readable after its last write. */
  ttlSeconds: number;
  /** Most runs kept; the oldest go first. Default 1000. */
  maxRuns?: number;
  now?: () => number;
}

const DEFAULT_MAX_RUNS = 1000;

/** Runs of this process, in memory (the embedded default). */
export class MemoryRunStore implements RunStore {
  readonly #runs = new Map<string, { record: RunRecord; expiresAt: number }>();
  readonly #ttlMs: number;
  readonly #maxRuns: number;
  readonly #now: () => number;

  constructor(limits: RunStoreLimits) {
    this.#ttlMs = limits.ttlSeconds * 1000;
    this.#maxRuns = limits.maxRuns ?? DEFAULT_MAX_RUNS;
    this.#now = limits.now ?? Date.now;
  }

  async save(record: RunRecord): Promise<void> {
    // A Map keeps first-insertion order, so the oldest run is first.
    if (!this.#runs.has(record.id) && this.#runs.size >= this.#maxRuns) this.#runs.delete(this.#runs.keys().next().value!);
    this.#runs.set(record.id, { record: structuredClone(record), expiresAt: this.#now() + this.#ttlMs });
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const entry = this.#runs.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#runs.delete(id);
      return undefined;
    }
    return structuredClone(entry.record);
  }

  async list(limit: number): Promise<RunRecord[]> {
    const now = this.#now();
    const runs: RunRecord[] = [];
    for (const [id, entry] of [...this.#runs].reverse()) {
      if (entry.expiresAt <= now) {
        this.#runs.delete(id);
        continue;
      }
      runs.push(structuredClone(entry.record));
      if (runs.length >= limit) break;
    }
    return runs.sort((a, b) => b.createdAt - a.createdAt);
  }

  async close(): Promise<void> {}
}

export interface RedisRunStoreOptions extends RunStoreLimits {
  /** A `redis://` URL, ioredis options, or a client to use (not closed by the store). */
  connection: string | RedisOptions | Redis;
  /** Key prefix, shared with the queue's. Default `switchboard`. */
  prefix?: string;
}

/**
 * Runs in the fleet's Redis: one JSON string per run with Redis' own expiry
 * (`<prefix>:sb:run:<id>`) and a sorted set of ids by creation time
 * (`<prefix>:sb:runs`), trimmed to `maxRuns`.
 */
export class RedisRunStore implements RunStore {
  readonly #redis: Redis;
  readonly #owned: boolean;
  readonly #base: string;
  readonly #index: string;
  readonly #ttlSeconds: number;
  readonly #maxRuns: number;

  constructor(options: RedisRunStoreOptions) {
    const prefix = options.prefix ?? "switchboard";
    this.#base = `${prefix}:sb:run:`;
    this.#index = `${prefix}:sb:runs`;
    this.#ttlSeconds = options.ttlSeconds;
    this.#maxRuns = options.maxRuns ?? DEFAULT_MAX_RUNS;
    if (options.connection instanceof Redis) {
      this.#redis = options.connection;
      this.#owned = false;
    } else {
      const overrides: RedisOptions = {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: 5000,
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1000),
        connectionName: "switchboard-runs",
      };
      this.#redis = typeof options.connection === "string" ? new Redis(options.connection, overrides) : new Redis({ ...options.connection, ...overrides });
      this.#redis.on("error", () => undefined);
      this.#owned = true;
    }
  }

  async save(record: RunRecord): Promise<void> {
    await this.#ready();
    await this.#redis
      .multi()
      .set(this.#base + record.id, JSON.stringify(record), "EX", this.#ttlSeconds)
      .zadd(this.#index, record.createdAt, record.id)
      .zremrangebyrank(this.#index, 0, -(this.#maxRuns + 1))
      .exec();
  }

  async get(id: string): Promise<RunRecord | undefined> {
    await this.#ready();
    const text = await this.#redis.get(this.#base + id);
    return text === null ? undefined : (JSON.parse(text) as RunRecord);
  }

  async list(limit: number): Promise<RunRecord[]> {
    await this.#ready();
    const ids = await this.#redis.zrevrange(this.#index, 0, Math.max(0, limit - 1));
    if (ids.length === 0) return [];
    const texts = await this.#redis.mget(ids.map((id) => this.#base + id));
    const expired = ids.filter((_, index) => texts[index] === null);
    if (expired.length > 0) await this.#redis.zrem(this.#index, ...expired);
    return texts.flatMap((text) => (text === null ? [] : [JSON.parse(text) as RunRecord]));
  }

  async close(): Promise<void> {
    if (this.#owned) this.#redis.disconnect();
  }

  async #ready(): Promise<void> {
    if (this.#redis.status === "wait") await this.#redis.connect().catch(() => undefined);
  }
}
