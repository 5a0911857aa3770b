/** Picks and builds the store a process uses from the `artifacts:` settings. */
import type { ArtifactSettings } from "@switchboard/catalog";
import type { ArtifactStore } from "./artifact-store.js";
import { DiskArtifactStore } from "./disk-store.js";
import { MemoryArtifactStore } from "./memory-store.js";
import { RedisArtifactStore } from "./redis-store.js";

export interface CreateArtifactStoreOptions {
  /**
   * The fleet's Redis (`REDIS_URL`) in fleet mode: artifacts must be
   * reachable by every process, so fleet-mode processes never use memory or
   * disk unless `artifacts.redisUrl` points elsewhere.
   */
  fleetRedisUrl?: string;
  /** Key prefix shared with the queue (`SWITCHBOARD_QUEUE_PREFIX`). */
  prefix?: string;
}

/**
 * `artifacts.redisUrl` → Redis; else fleet mode → the fleet's Redis; else
 * `artifacts.dir` → disk; else memory.
 */
export function createArtifactStore(settings: ArtifactSettings, options: CreateArtifactStoreOptions = {}): ArtifactStore {
  const limits = { ttlSeconds: settings.ttlSeconds, maxBytes: settings.maxBytes };
  const redisUrl = settings.redisUrl ?? options.fleetRedisUrl;
  if (redisUrl !== undefined) return new RedisArtifactStore({ ...limits, connection: redisUrl, ...(options.prefix ? { prefix: options.prefix } : {}) });
  if (settings.dir !== undefined) return new DiskArtifactStore({ ...limits, dir: settings.dir });
  return new MemoryArtifactStore({ ...limits, maxTotalBytes: settings.maxTotalBytes });
}
