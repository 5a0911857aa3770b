export {
  artifactStoreUnavailable,
  artifactTooLarge,
  isArtifactId,
  sha256Hex,
  type Artifact,
  type ArtifactInfo,
  type ArtifactStore,
  type ArtifactStoreLimits,
} from "./artifact-store.js";
export { MemoryArtifactStore, type MemoryArtifactStoreOptions } from "./memory-store.js";
export { DiskArtifactStore, type DiskArtifactStoreOptions } from "./disk-store.js";
export { RedisArtifactStore, type RedisArtifactStoreOptions } from "./redis-store.js";
export { ARTIFACT_ROUTE_PREFIX, ArtifactUrlSigner, type SignatureCheck } from "./signed-urls.js";
export { createArtifactStore, type CreateArtifactStoreOptions } from "./create-store.js";
