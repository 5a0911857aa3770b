/**
 * Request ids: a client's `x-request-id` is kept when it is safe to echo and
 * log (printable ASCII, at most 128 characters); otherwise the gateway makes
 * one. Job ids are always made here, never taken from the client.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";

export const REQUEST_ID_HEADER = "x-request-id";
export const MAX_REQUEST_ID_LENGTH = 128;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** Whether a client-sent request id may be echoed in headers and logs. */
export function isAcceptableRequestId(value: string): boolean {
  return value.length <= MAX_REQUEST_ID_LENGTH && PRINTABLE_ASCII.test(value) && value.trim() !== "";
}

/** Fastify `genReqId`: the client's `x-request-id` when acceptable, else a new UUID. */
export function requestIdFor(request: IncomingMessage): string {
  const sent = request.headers[REQUEST_ID_HEADER];
  if (typeof sent === "string" && isAcceptableRequestId(sent)) return sent;
  return randomUUID();
}

/** A new job id: unique, unguessable, and safe inside response ids such as `chatcmpl-<id>`. */
export function newJobId(): string {
  return randomUUID().replaceAll("-", "");
}
