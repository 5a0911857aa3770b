/**
 * Bearer-key checks. Keys are compared as SHA-256 digests with
 * `timingSafeEqual`, and every configured key is compared on every check, so
 * the time taken says nothing about how much of a key was right or which key
 * it resembled.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export class ApiKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  /** Whether keys are configured at all; without keys the API is open. */
  get enabled(): boolean {
    return this.#digests.length > 0;
  }

  /** Whether an `Authorization` header value carries one of the keys (`Bearer <key>`). */
  authorizes(authorization: string | undefined): boolean {
    const key = bearerToken(authorization);
    if (key === undefined) return false;
    const candidate = digest(key);
    let match = false;
    for (const known of this.#digests) match = timingSafeEqual(candidate, known) || match;
    return match;
  }
}

function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match?.[1];
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
