/**
 * Signed artifact URLs: `/v1/artifacts/<id>?expires=<unix s>&signature=<HMAC>`.
 * The signature is the capability: whoever has the URL may fetch the artifact
 * until it expires, with no API key (a browser can open it), and nobody can
 * make a URL for another artifact or a later expiry without the secret.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Path of the route that serves artifacts. */
export const ARTIFACT_ROUTE_PREFIX = "/v1/artifacts/";

export type SignatureCheck = "valid" | "expired" | "invalid";

export class ArtifactUrlSigner {
  readonly #key: Buffer;

  /** `secret`: at least 16 bytes of key material; a random 32-byte key when absent (valid for this process only). */
  constructor(secret?: string | Uint8Array) {
    if (secret === undefined) this.#key = randomBytes(32);
    else {
      this.#key = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
      if (this.#key.length < 16) throw new RangeError("An artifact URL secret needs at least 16 bytes.");
    }
  }

  signature(id: string, expires: number): string {
    return createHmac("sha256", this.#key).update(`artifact:v1:${id}:${expires}`).digest("base64url");
  }

  /** The path and query of a URL for `id` that works until `expiresAtMs` (rounded down to a second). */
  path(id: string, expiresAtMs: number): string {
    const expires = Math.floor(expiresAtMs / 1000);
    return `${ARTIFACT_ROUTE_PREFIX}${id}?expires=${expires}&signature=${this.signature(id, expires)}`;
  }

  /** Checks a URL's parts: `invalid` for anything not signed by this key, `expired` for a genuine URL past its time. */
  check(id: string, expires: string | undefined, signature: string | undefined, nowMs = Date.now()): SignatureCheck {
    if (expires === undefined || signature === undefined || !/^\d{1,12}$/.test(expires)) return "invalid";
    const expected = Buffer.from(this.signature(id, Number(expires)));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "invalid";
    return Number(expires) * 1000 < nowMs ? "expired" : "valid";
  }
}
