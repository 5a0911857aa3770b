/** The in-process store: the embedded default without a folder. Bounded by total bytes, oldest first out. */
import { checkPut, isArtifactId, sha256Hex, type Artifact, type ArtifactInfo, type ArtifactStore, type ArtifactStoreLimits } from "./artifact-store.js";

export interface MemoryArtifactStoreOptions extends ArtifactStoreLimits {
  /** Bytes kept in all; past it the artifacts stored longest ago are dropped. */
  maxTotalBytes: number;
}

export class MemoryArtifactStore implements ArtifactStore {
  readonly kind = "memory";
  readonly #options: MemoryArtifactStoreOptions;
  readonly #now: () => number;
  /** In order of last put; with one TTL for all, that is also the order of expiry. */
  readonly #artifacts = new Map<string, Artifact>();
  #totalBytes = 0;

  constructor(options: MemoryArtifactStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes held now. */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  async put(data: Uint8Array, mimeType: string): Promise<ArtifactInfo> {
    checkPut(data, mimeType, this.#options);
    const id = sha256Hex(data);
    this.#delete(id);
    const artifact: Artifact = {
      id,
      sha256: id,
      mimeType,
      bytes: data.byteLength,
      expiresAt: this.#now() + this.#options.ttlSeconds * 1000,
      // A copy: the caller may reuse its buffer.
      data: new Uint8Array(data),
    };
    this.#artifacts.set(id, artifact);
    this.#totalBytes += artifact.bytes;
    this.#evict();
    const { data: _data, ...info } = artifact;
    return info;
  }

  async get(id: string): Promise<Artifact | undefined> {
    if (!isArtifactId(id)) return undefined;
    const artifact = this.#artifacts.get(id);
    if (!artifact) return undefined;
    if (artifact.expiresAt <= this.#now()) {
      this.#delete(id);
      return undefined;
    }
    return artifact;
  }

  async close(): Promise<void> {
    this.#artifacts.clear();
    this.#totalBytes = 0;
  }

  #delete(id: string): void {
    const existing = this.#artifacts.get(id);
    if (!existing) return;
    this.#artifacts.delete(id);
    this.#totalBytes -= existing.bytes;
  }

  /** Drops expired artifacts, then the oldest until the total fits. */
  #evict(): void {
    const now = this.#now();
    for (const [id, artifact] of this.#artifacts) {
      if (artifact.expiresAt > now && this.#totalBytes <= this.#options.maxTotalBytes) break;
      // Never drop the artifact just stored, even when it alone is over the total.
      if (this.#artifacts.size === 1) break;
      this.#delete(id);
    }
  }
}
