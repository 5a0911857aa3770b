/**
 * The three stores behind one contract (content address, TTL, size cap), the
 * Redis one against the real Redis under a random prefix, and signed URLs.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { sha256Hex, type ArtifactStore } from "./artifact-store.js";
import { createArtifactStore } from "./create-store.js";
import { DiskArtifactStore } from "./disk-store.js";
import { MemoryArtifactStore } from "./memory-store.js";
import { RedisArtifactStore } from "./redis-store.js";
import { ArtifactUrlSigner } from "./signed-urls.js";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `sbtest-${randomUUID().slice(0, 12)}`;
const cleanup: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

/** A clock the tests move. */
function clock() {
  let now = 1_700_000_000_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

const bytes = (text: string) => new Uint8Array(Buffer.from(text));

const stores: Array<[string, (now: () => number) => Promise<ArtifactStore>]> = [
  ["memory", async (now) => new MemoryArtifactStore({ ttlSeconds: 60, maxBytes: 1024, maxTotalBytes: 4096, now })],
  [
    "disk",
    async (now) => {
      const dir = await mkdtemp(join(tmpdir(), "sb-artifacts-"));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      return new DiskArtifactStore({ ttlSeconds: 60, maxBytes: 1024, dir, now });
    },
  ],
  [
    "redis",
    async (now) => {
      const store = new RedisArtifactStore({ ttlSeconds: 60, maxBytes: 1024, connection: redisUrl, prefix, now });
      cleanup.push(() => store.close());
      return store;
    },
  ],
];

describe.each(stores)("%s store", (kind, make) => {
  it("keeps bytes under their SHA-256 and gives them back with their type", async () => {
    const store = await make(Date.now);
    const data = bytes(`png-ish bytes ${kind}`);
    const info = await store.put(data, "image/png");
    expect(info).toMatchObject({ id: sha256Hex(data), sha256: sha256Hex(data), mimeType: "image/png", bytes: data.byteLength });
    const again = await store.put(data, "image/png");
    expect(again.id).toBe(info.id);
    const artifact = await store.get(info.id);
    expect(artifact?.mimeType).toBe("image/png");
    expect(Buffer.from(artifact!.data).equals(Buffer.from(data))).toBe(true);
  });

  it("refuses artifacts over the size cap with a 502 that says so", async () => {
    const store = await make(Date.now);
    await expect(store.put(new Uint8Array(2048), "image/png")).rejects.toMatchObject({ status: 502, code: "artifact_too_large" });
  });

  it("answers undefined for unknown ids and for ids that are not content addresses", async () => {
    const store = await make(Date.now);
    expect(await store.get("0".repeat(64))).toBeUndefined();
    expect(await store.get("../../etc/passwd")).toBeUndefined();
    expect(await store.get("A".repeat(64))).toBeUndefined();
  });

  if (kind !== "redis") {
    it("forgets an artifact once its TTL has passed", async () => {
      const time = clock();
      const store = await make(time.now);
      const info = await store.put(bytes(`expiring ${kind}`), "audio/wav");
      expect(info.expiresAt).toBe(time.now() + 60_000);
      time.advance(59_000);
      expect(await store.get(info.id)).toBeDefined();
      time.advance(2_000);
      expect(await store.get(info.id)).toBeUndefined();
    });
  }
});

describe("redis store specifics", () => {
  it("sets Redis' own expiry, and every process that shares the Redis reads the artifact", async () => {
    const writer = new RedisArtifactStore({ ttlSeconds: 30, maxBytes: 1024, connection: redisUrl, prefix });
    const reader = new RedisArtifactStore({ ttlSeconds: 30, maxBytes: 1024, connection: redisUrl, prefix });
    const redis = new Redis(redisUrl);
    try {
      const info = await writer.put(bytes("shared"), "video/mp4");
      const ttl = await redis.pttl(writer.key(info.id));
      expect(ttl).toBeGreaterThan(25_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
      expect((await reader.get(info.id))?.mimeType).toBe("video/mp4");
      await redis.del(writer.key(info.id));
      expect(await reader.get(info.id)).toBeUndefined();
    } finally {
      await Promise.all([writer.close(), reader.close()]);
      // Only this test's keys.
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
    }
  });

  it("answers 503 with Retry-After when Redis is unreachable", async () => {
    const store = new RedisArtifactStore({ ttlSeconds: 30, maxBytes: 1024, connection: "redis://127.0.0.1:1", prefix, commandTimeoutMs: 300 });
    try {
      await expect(store.put(bytes("x"), "image/png")).rejects.toMatchObject({ status: 503, code: "artifact_store_unavailable", retryAfterSeconds: 2 });
    } finally {
      await store.close();
    }
  });
});

describe("memory store bound", () => {
  it("drops the oldest artifacts past maxTotalBytes, never the newest", async () => {
    const store = new MemoryArtifactStore({ ttlSeconds: 60, maxBytes: 1024, maxTotalBytes: 2048 });
    const first = await store.put(new Uint8Array(1000).fill(1), "image/png");
    const second = await store.put(new Uint8Array(1000).fill(2), "image/png");
    const third = await store.put(new Uint8Array(1000).fill(3), "image/png");
    expect(await store.get(first.id)).toBeUndefined();
    expect(await store.get(second.id)).toBeDefined();
    expect(await store.get(third.id)).toBeDefined();
    expect(store.totalBytes).toBe(2000);
  });
});

describe("disk store files", () => {
  it("ignores a file whose bytes no longer match its name, and sweeps expired ones", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sb-artifacts-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const time = clock();
    const store = new DiskArtifactStore({ ttlSeconds: 60, maxBytes: 1024, dir, now: time.now });
    const info = await store.put(bytes("original"), "image/png");
    await writeFile(join(dir, `${info.id}.bin`), "tampered");
    expect(await store.get(info.id)).toBeUndefined();
    await store.put(bytes("another"), "image/png");
    time.advance(61_000);
    await store.sweep();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("createArtifactStore", () => {
  const settings = { ttlSeconds: 60, maxBytes: 1024, maxTotalBytes: 4096, urlTtlSeconds: 60 };
  it("picks Redis when asked or in fleet mode, a folder when given, memory otherwise", async () => {
    const made = [
      createArtifactStore({ ...settings, redisUrl: redisUrl }),
      createArtifactStore(settings, { fleetRedisUrl: redisUrl }),
      createArtifactStore({ ...settings, dir: join(tmpdir(), "unused-artifacts") }),
      createArtifactStore(settings),
    ];
    expect(made.map((store) => store.kind)).toEqual(["redis", "redis", "disk", "memory"]);
    await Promise.all(made.map((store) => store.close()));
  });
});

describe("signed URLs", () => {
  const id = "a".repeat(64);

  it("are valid until they expire, for their id only, and only under their key", () => {
    const signer = new ArtifactUrlSigner("a secret of at least sixteen bytes");
    const now = 1_700_000_000_000;
    const path = signer.path(id, now + 60_000);
    const url = new URL(path, "http://gateway");
    expect(url.pathname).toBe(`/v1/artifacts/${id}`);
    const expires = url.searchParams.get("expires")!;
    const signature = url.searchParams.get("signature")!;
    expect(signer.check(id, expires, signature, now)).toBe("valid");
    expect(signer.check(id, expires, signature, now + 61_000)).toBe("expired");
    expect(signer.check("b".repeat(64), expires, signature, now)).toBe("invalid");
    expect(signer.check(id, String(Number(expires) + 1), signature, now)).toBe("invalid");
    expect(signer.check(id, expires, signature.slice(0, -1) + (signature.endsWith("A") ? "B" : "A"), now)).toBe("invalid");
    expect(signer.check(id, undefined, signature, now)).toBe("invalid");
    expect(signer.check(id, "1e12", signature, now)).toBe("invalid");
    expect(new ArtifactUrlSigner("another secret, also sixteen+").check(id, expires, signature, now)).toBe("invalid");
    // A random key per process: URLs of one process do not work in another.
    expect(new ArtifactUrlSigner().check(id, expires, signature, now)).toBe("invalid");
  });

  it("refuse short keys", () => {
    expect(() => new ArtifactUrlSigner("short")).toThrow(RangeError);
  });
});
