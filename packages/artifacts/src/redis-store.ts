/**
 * The fleet's store: artifacts in the Redis the queue already uses, so every
 * gateway and worker that shares the queue reaches them. One hash per
 * artifact (`m` type, `d` bytes) under `<prefix>:sb:artifact:<id>`, with
 * Redis' own expiry. Redis keeps values in memory: `maxBytes` caps each
 * artifact, and the Redis `maxmemory` policy caps the total.
 */
import { Redis, type RedisOptions } from "ioredis";
import { artifactStoreUnavailable, checkPut, isArtifactId, sha256Hex, type Artifact, type ArtifactInfo, type ArtifactStore, type ArtifactStoreLimits } from "./artifact-store.js";

export interface RedisArtifactStoreOptions extends ArtifactStoreLimits {
  /** A `redis://` URL, ioredis options, or a client to use (not closed by the store). */
  connection: string | RedisOptions | Redis;
  /** Key prefix, shared with the queue's. Default `switchboard`. */
  prefix?: string;
  /** Redis command timeout, ms. Default 5000. */
  commandTimeoutMs?: number;
}

export class RedisArtifactStore implements ArtifactStore {
  readonly kind = "redis";
  readonly #options: RedisArtifactStoreOptions;
  readonly #redis: Redis;
  readonly #owned: boolean;
  readonly #base: string;

  constructor(options: RedisArtifactStoreOptions) {
    this.#options = options;
    this.#base = `${options.prefix ?? "switchboard"}:sb:artifact:`;
    if (options.connection instanceof Redis) {
      this.#redis = options.connection;
      this.#owned = false;
    } else {
      const overrides: RedisOptions = {
        // Fail fast while Redis is away: the request gets a 503 now instead of waiting in an offline queue.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: options.commandTimeoutMs ?? 5000,
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1000),
        connectionName: "switchboard-artifacts",
      };
      this.#redis = typeof options.connection === "string" ? new Redis(options.connection, overrides) : new Redis({ ...options.connection, ...overrides });
      this.#redis.on("error", () => undefined);
      this.#owned = true;
    }
  }

  /** The Redis key of an artifact. */
  key(id: string): string {
    return this.#base + id;
  }

  async put(data: Uint8Array, mimeType: string): Promise<ArtifactInfo> {
    checkPut(data, mimeType, this.#options);
    const id = sha256Hex(data);
    const ttlMs = this.#options.ttlSeconds * 1000;
    const expiresAt = (this.#options.now ?? Date.now)() + ttlMs;
    await this.#ready();
    try {
      await this.#redis
        .multi()
        .hset(this.key(id), "m", mimeType, "d", Buffer.from(data.buffer, data.byteOffset, data.byteLength), "e", String(expiresAt))
        .pexpire(this.key(id), ttlMs)
        .exec();
    } catch {
      throw artifactStoreUnavailable(this.kind);
    }
    return { id, sha256: id, mimeType, bytes: data.byteLength, expiresAt };
  }

  async get(id: string): Promise<Artifact | undefined> {
    if (!isArtifactId(id)) return undefined;
    await this.#ready();
    let fields: Record<string, Buffer>;
    try {
      fields = await this.#redis.hgetallBuffer(this.key(id));
    } catch {
      throw artifactStoreUnavailable(this.kind);
    }
    const data = fields.d;
    const mimeType = fields.m?.toString("utf8");
    if (!data || !mimeType) return undefined;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { id, sha256: id, mimeType, bytes: bytes.byteLength, expiresAt: Number(fields.e?.toString("utf8") ?? 0), data: bytes };
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  /** Waits briefly for the first connection, so a store made at start-up does not fail its first call. */
  async #ready(): Promise<void> {
    if (this.#redis.status === "ready" || !this.#owned) return;
    if (this.#redis.status === "wait") this.#redis.connect().catch(() => undefined);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#redis.off("ready", done);
        resolve();
      };
      const timer = setTimeout(done, this.#options.commandTimeoutMs ?? 5000);
      this.#redis.once("ready", done);
    });
  }
}
