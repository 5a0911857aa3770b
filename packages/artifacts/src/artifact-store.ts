/**
 * The artifact store contract: binary task outputs (images, audio, video)
 * kept by content address for a while, so they travel between processes as
 * small references instead of base64 inside jobs and events, and the gateway
 * can serve them at signed URLs.
 *
 * - The id is the hex SHA-256 of the bytes: storing the same bytes twice
 *   gives the same id (and refreshes the expiry).
 * - Every artifact expires `ttlSeconds` after it was last stored.
 * - Implementations: memory (one process), disk (one machine), Redis (every
 *   process of a fleet that shares the Redis).
 */
import { createHash } from "node:crypto";
import { GatewayError } from "@switchboard/protocol";

/** What the store knows about an artifact. */
export interface ArtifactInfo {
  /** Content address: hex SHA-256 of the bytes. */
  id: string;
  sha256: string;
  mimeType: string;
  /** Size in bytes. */
  bytes: number;
  /** Epoch milliseconds after which the store may forget it. */
  expiresAt: number;
}

/** An artifact with its bytes. */
export interface Artifact extends ArtifactInfo {
  data: Uint8Array;
}

export interface ArtifactStore {
  /** `memory`, `disk` or `redis`, for logs. */
  readonly kind: string;
  /** Keeps `data`; throws a GatewayError when it is too large or the store is unreachable. */
  put(data: Uint8Array, mimeType: string): Promise<ArtifactInfo>;
  /** The artifact, or undefined when it never existed, expired, or `id` is not an artifact id. */
  get(id: string): Promise<Artifact | undefined>;
  close(): Promise<void>;
}

/** Limits every store applies. */
export interface ArtifactStoreLimits {
  ttlSeconds: number;
  /** Largest artifact accepted. */
  maxBytes: number;
  /** Clock (tests). */
  now?: () => number;
}

const ARTIFACT_ID = /^[0-9a-f]{64}$/;

/** Whether `id` has the shape of an artifact id (and so is safe in a key or file name). */
export function isArtifactId(id: string): boolean {
  return ARTIFACT_ID.test(id);
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export const artifactTooLarge = (bytes: number, maxBytes: number) =>
  new GatewayError(`The output is ${bytes} bytes, more than the artifact store keeps (${maxBytes} bytes).`, {
    status: 502,
    type: "server_error",
    code: "artifact_too_large",
  });

export const artifactStoreUnavailable = (kind: string) =>
  new GatewayError(`The artifact store (${kind}) is unreachable; retry shortly.`, {
    status: 503,
    type: "service_unavailable_error",
    code: "artifact_store_unavailable",
    retryAfterSeconds: 2,
  });

/** Common checks before a put: size, MIME type shape. */
export function checkPut(data: Uint8Array, mimeType: string, limits: ArtifactStoreLimits): void {
  if (data.byteLength > limits.maxBytes) throw artifactTooLarge(data.byteLength, limits.maxBytes);
  if (!/^[\w.+-]+\/[\w.+-]+$/.test(mimeType)) throw new TypeError(`not a MIME type: ${JSON.stringify(mimeType)}`);
}
