/**
 * Fetching URLs that users supply (binary task inputs) without becoming a
 * proxy into the private network (SSRF):
 *
 * - only http and https, no credentials in the URL;
 * - the host is resolved here, and every address it resolves to must be
 *   public (see `address-policy.ts`) unless allow-listed;
 * - the connection goes to the address that was checked: the request's
 *   `lookup` returns it, so nothing re-resolves the name between the check
 *   and the connect (no DNS rebinding window);
 * - redirects are followed by hand, each hop checked the same way (3 at most);
 * - time, size and content type are capped.
 *
 * A refusal is a 400 that says why, raised before any connection is made.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { GatewayError } from "@switchboard/protocol";
import { blockedReason, isAllowListed, parseIPv4, parseIPv6 } from "./address-policy.js";

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface FetchUserUrlOptions {
  /** Host names, addresses or CIDR ranges that may be private. */
  allowList?: readonly string[];
  maxBytes: number;
  /** For the whole fetch, redirects included. */
  timeoutMs: number;
  /** Accepted `Content-Type`s: exact (`image/png`) or wildcards (`image/*`). */
  allowedContentTypes: readonly string[];
  /** Default 3. */
  maxRedirects?: number;
  signal?: AbortSignal;
  /** Name resolution; the system resolver (every address) by default. Tests pass a fixed table. */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>;
}

export interface FetchedUrl {
  bytes: Buffer;
  /** Without parameters, lower case. */
  contentType: string;
  /** After redirects. */
  url: string;
}

const refused = (message: string) =>
  new GatewayError(message, { status: 400, type: "invalid_request_error", code: "url_refused", param: "inputs" });
const failed = (message: string) =>
  new GatewayError(message, { status: 400, type: "invalid_request_error", code: "url_fetch_failed", param: "inputs" });

async function systemResolve(hostname: string): Promise<ResolvedAddress[]> {
  const addresses = await dnsLookup(hostname, { all: true, verbatim: true });
  return addresses.map((entry) => ({ address: entry.address, family: entry.family === 6 ? 6 : 4 }));
}

function contentTypeAllowed(contentType: string, allowed: readonly string[]): boolean {
  return allowed.some((pattern) => {
    const wanted = pattern.toLowerCase();
    return wanted.endsWith("/*") ? contentType.startsWith(wanted.slice(0, -1)) : contentType === wanted;
  });
}

/** Checks one hop and returns the address to connect to; throws a 400 when the URL may not be fetched. */
async function checkTarget(url: URL, options: FetchUserUrlOptions): Promise<ResolvedAddress> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw refused(`Only http and https URLs can be fetched; '${url.protocol.replace(/:$/, "")}' URLs are refused.`);
  }
  if (url.username || url.password) throw refused("URLs with credentials (user:password@host) are refused.");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const allowList = options.allowList ?? [];
  const literal = parseIPv4(host) ? 4 : parseIPv6(host) ? 6 : undefined;
  let addresses: ResolvedAddress[];
  if (literal) addresses = [{ address: host, family: literal }];
  else {
    try {
      addresses = await (options.resolve ?? systemResolve)(host);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0) throw failed(`The URL's host '${host}' could not be resolved.`);
  }
  // Every address must pass: a name with one public and one private address
  // could otherwise be steered to the private one.
  for (const { address } of addresses) {
    if (isAllowListed(host, address, allowList)) continue;
    const reason = blockedReason(address);
    if (reason) {
      const what = literal ? `The URL's host ${address} is ${reason}` : `The URL's host '${host}' resolves to ${address}, ${reason}`;
      throw refused(`${what}; only public addresses can be fetched.`);
    }
  }
  return addresses[0]!;
}

/** A `lookup` that answers with the address already checked, whatever name it is asked about. */
function pinnedLookup(target: ResolvedAddress): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  }) as unknown as LookupFunction;
}

export async function fetchUserUrl(rawUrl: string, options: FetchUserUrlOptions): Promise<FetchedUrl> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw refused("The input is not a valid URL.");
  }
  const maxRedirects = options.maxRedirects ?? 3;
  const control = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    control.abort();
  }, options.timeoutMs);
  const onAbort = () => control.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const interrupted = () => (timedOut ? failed(`The URL did not answer within ${options.timeoutMs} ms.`) : failed("The fetch was cancelled."));

  try {
    for (let redirects = 0; ; redirects++) {
      const target = await checkTarget(url, options);
      if (control.signal.aborted) throw interrupted();
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const send = url.protocol === "https:" ? httpsRequest : httpRequest;
        const outgoing = send(url, {
          method: "GET",
          // A fresh socket per hop: a pooled one could be connected elsewhere.
          agent: false,
          lookup: pinnedLookup(target),
          signal: control.signal,
          headers: { accept: options.allowedContentTypes.join(", "), "user-agent": "switchboard" },
        });
        outgoing.on("response", resolve);
        outgoing.on("error", reject);
        outgoing.end();
      }).catch((error: unknown) => {
        if (control.signal.aborted) throw interrupted();
        throw failed(`The URL could not be fetched (${(error as NodeJS.ErrnoException).code ?? "connection failed"}).`);
      });

      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        if (redirects >= maxRedirects) throw refused(`The URL redirected more than ${maxRedirects} times.`);
        try {
          url = new URL(response.headers.location, url);
        } catch {
          throw failed("The URL redirected to an invalid address.");
        }
        continue;
      }
      if (status < 200 || status >= 300) {
        response.resume();
        throw failed(`The URL answered HTTP ${status}.`);
      }
      const contentType = (response.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (!contentTypeAllowed(contentType, options.allowedContentTypes)) {
        response.destroy();
        throw refused(`The URL's content type '${contentType || "none"}' is not one of ${options.allowedContentTypes.join(", ")}.`);
      }
      const declared = Number(response.headers["content-length"] ?? NaN);
      if (Number.isFinite(declared) && declared > options.maxBytes) {
        response.destroy();
        throw refused(`The URL's content is ${declared} bytes; the limit is ${options.maxBytes}.`);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      try {
        for await (const chunk of response) {
          total += (chunk as Buffer).length;
          if (total > options.maxBytes) {
            response.destroy();
            throw refused(`The URL's content is larger than the limit of ${options.maxBytes} bytes.`);
          }
          chunks.push(chunk as Buffer);
        }
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        if (control.signal.aborted) throw interrupted();
        throw failed("The URL's content broke off.");
      }
      return { bytes: Buffer.concat(chunks), contentType, url: url.href };
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}
