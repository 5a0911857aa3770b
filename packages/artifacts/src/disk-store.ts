/**
 * A folder of artifacts: `<id>.bin` (the bytes) and `<id>.json` (type and
 * expiry). For the embedded default when a folder is configured (artifacts
 * survive restarts), or for processes of one machine that share the folder.
 * Expired files are removed when read and by a sweep after puts.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { artifactStoreUnavailable, checkPut, isArtifactId, sha256Hex, type Artifact, type ArtifactInfo, type ArtifactStore, type ArtifactStoreLimits } from "./artifact-store.js";

export interface DiskArtifactStoreOptions extends ArtifactStoreLimits {
  dir: string;
  /** Least time between sweeps of expired files, ms. Default 60000. */
  sweepIntervalMs?: number;
}

interface Meta {
  mimeType: string;
  bytes: number;
  expiresAt: number;
}

export class DiskArtifactStore implements ArtifactStore {
  readonly kind = "disk";
  readonly #options: DiskArtifactStoreOptions;
  readonly #now: () => number;
  #ready: Promise<void> | undefined;
  #lastSweep = 0;
  #sweeping: Promise<void> | undefined;

  constructor(options: DiskArtifactStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  async put(data: Uint8Array, mimeType: string): Promise<ArtifactInfo> {
    checkPut(data, mimeType, this.#options);
    const id = sha256Hex(data);
    const info: ArtifactInfo = { id, sha256: id, mimeType, bytes: data.byteLength, expiresAt: this.#now() + this.#options.ttlSeconds * 1000 };
    try {
      await (this.#ready ??= mkdir(this.#options.dir, { recursive: true }).then(() => undefined));
      // Write then rename: a reader never sees half a file.
      const temporary = join(this.#options.dir, `.${id}.${randomUUID()}.tmp`);
      await writeFile(temporary, data);
      await rename(temporary, this.#path(id, "bin"));
      const meta: Meta = { mimeType, bytes: info.bytes, expiresAt: info.expiresAt };
      await writeFile(temporary, JSON.stringify(meta));
      await rename(temporary, this.#path(id, "json"));
    } catch {
      this.#ready = undefined;
      throw artifactStoreUnavailable(this.kind);
    }
    this.#maybeSweep();
    return info;
  }

  async get(id: string): Promise<Artifact | undefined> {
    if (!isArtifactId(id)) return undefined;
    let meta: Meta;
    try {
      meta = JSON.parse(await readFile(this.#path(id, "json"), "utf8")) as Meta;
    } catch {
      return undefined;
    }
    if (meta.expiresAt <= this.#now()) {
      await this.#remove(id);
      return undefined;
    }
    let data: Uint8Array;
    try {
      data = new Uint8Array(await readFile(this.#path(id, "bin")));
    } catch {
      return undefined;
    }
    // The name is the content address: a file changed on disk is not this artifact.
    if (data.byteLength !== meta.bytes || sha256Hex(data) !== id) return undefined;
    return { id, sha256: id, mimeType: meta.mimeType, bytes: meta.bytes, expiresAt: meta.expiresAt, data };
  }

  /** Removes every expired artifact now. */
  async sweep(): Promise<void> {
    this.#lastSweep = this.#now();
    let names: string[];
    try {
      names = await readdir(this.#options.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const id = name.slice(0, -".json".length);
      if (!name.endsWith(".json") || !isArtifactId(id)) continue;
      try {
        const meta = JSON.parse(await readFile(this.#path(id, "json"), "utf8")) as Meta;
        if (meta.expiresAt <= this.#now()) await this.#remove(id);
      } catch {
        // Removed meanwhile, or being written: the next sweep sees it.
      }
    }
  }

  async close(): Promise<void> {
    await this.#sweeping;
  }

  #path(id: string, extension: "bin" | "json"): string {
    return join(this.#options.dir, `${id}.${extension}`);
  }

  async #remove(id: string): Promise<void> {
    await Promise.all([rm(this.#path(id, "json"), { force: true }), rm(this.#path(id, "bin"), { force: true })]);
  }

  #maybeSweep(): void {
    if (this.#sweeping || this.#now() - this.#lastSweep < (this.#options.sweepIntervalMs ?? 60_000)) return;
    this.#sweeping = this.sweep().finally(() => (this.#sweeping = undefined));
  }
}
