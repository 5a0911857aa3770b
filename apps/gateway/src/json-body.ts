/**
 * The `application/json` body parser, with a body limit that a client can
 * actually read.
 *
 * Fastify's own limit answers 413 and closes the socket while the client is
 * still uploading; about half of 20 MB uploads then saw EPIPE instead of the
 * 413 (FIELD-NOTES), and SDKs retried. Here an oversized body is read to its
 * end and discarded chunk by chunk (nothing is buffered), then the 413 goes
 * out on a connection that stays usable. Only a body past `drainLimitBytes`
 * (declared or received) is cut off, with `connection: close`.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { GatewayError } from "@switchboard/protocol";

export interface JsonBodyOptions {
  /** Largest body accepted, in bytes. */
  limitBytes: number;
  /** Largest oversized body read and discarded before the 413; past it the connection is closed. */
  drainLimitBytes: number;
}

/** The 413 for a body over the limit. */
export function payloadTooLarge(limitBytes: number): GatewayError {
  return new GatewayError(`The request body is larger than this server accepts (${limitBytes} bytes). Send a smaller request.`, {
    status: 413,
    type: "invalid_request_error",
    code: "request_too_large",
  });
}

/** Replaces Fastify's JSON parser on `app` with the draining one. */
export function installJsonBodyParser(app: FastifyInstance, options: JsonBodyOptions): void {
  // Fastify's parser, for its empty-body and prototype-poisoning handling.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  // Every body this API takes is JSON; a text/plain body gets a clear 415 instead of a type error.
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("application/json", (request: FastifyRequest, payload, done) => {
    const declared = Number(request.headers["content-length"]);
    if (declared > options.drainLimitBytes) {
      done(payloadTooLarge(options.limitBytes), undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let tooLarge = declared > options.limitBytes;

    const finish = (error: Error | null, body?: string) => {
      payload.removeListener("data", onData);
      payload.removeListener("end", onEnd);
      payload.removeListener("error", onError);
      if (error) {
        done(error, undefined);
        return;
      }
      parseJson(request, body ?? "", done);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > options.drainLimitBytes) {
        finish(payloadTooLarge(options.limitBytes));
        return;
      }
      if (!tooLarge && received > options.limitBytes) {
        tooLarge = true;
        chunks.length = 0;
      }
      if (!tooLarge) chunks.push(chunk);
    };
    const onEnd = () => {
      if (tooLarge) finish(payloadTooLarge(options.limitBytes));
      else finish(null, chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, received).toString("utf8"));
    };
    const onError = (error: Error) => {
      const failure = new GatewayError("The request body could not be read.", { status: 400, type: "invalid_request_error", cause: error });
      finish(failure);
    };
    payload.on("data", onData);
    payload.on("end", onEnd);
    payload.on("error", onError);
  });
}
