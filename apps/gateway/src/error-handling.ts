/**
 * One root error handler and one not-found handler: every failure leaves the
 * gateway as an OpenAI error object (`{"error": {message, type, param,
 * code}}`) with a JSON content type, never a stack trace or a path. Errors
 * from Fastify itself (bad JSON, wrong content type, schema failures) are
 * mapped to readable 4xx messages here; anything unexpected is logged and
 * answered with a generic 500.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GatewayError, asGatewayError, invalidRequest, toOpenAIError } from "@switchboard/protocol";
import { schemaValidationError, type SchemaError } from "./validation-errors.js";

const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/** Installs the error, not-found and framework-error handlers on `app`. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const gatewayError = toGatewayError(error, request);
    sendError(request, reply, gatewayError, error);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = (request.raw.url ?? "/").split("?")[0]!.slice(0, 200);
    const error = new GatewayError(`Unknown request URL: ${request.method} ${path}. See /docs for the routes this server serves.`, {
      status: 404,
      type: "invalid_request_error",
      code: "unknown_url",
    });
    sendError(request, reply, error, undefined);
  });
}

/** Sends `error` as an OpenAI error body, with `Retry-After` when it has one. */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: GatewayError, original: unknown): void {
  if (error.status >= 500) request.log.error({ err: original ?? error, status: error.status, code: error.code }, "request failed");
  else request.log.info({ status: error.status, code: error.code, param: error.param }, error.message);
  // Also set by the onRequest hook; errors raised before routing (a malformed URL) never ran it.
  reply.header("x-request-id", request.id);
  if (error.retryAfterSeconds !== undefined) reply.header("retry-after", String(Math.max(0, Math.ceil(error.retryAfterSeconds))));
  // Fastify asks to close the connection after any body-parser error; once the body has been
  // read to its end (bad JSON, a drained oversized upload) the connection is still good.
  if (request.raw.complete) reply.removeHeader("connection");
  reply.code(error.status).type(JSON_CONTENT_TYPE).send(toOpenAIError(error));
}

/** Maps anything thrown in the request lifecycle to a GatewayError. */
export function toGatewayError(error: FastifyError | Error, request: FastifyRequest): GatewayError {
  if (error instanceof GatewayError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation !== undefined) {
    if (fastifyError.validationContext === "body") return schemaValidationError(fastifyError.validation as unknown as SchemaError[]);
    return invalidRequest(`Invalid request ${fastifyError.validationContext ?? "parameters"}: ${fastifyError.message}.`);
  }
  switch (fastifyError.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return invalidRequest(
        "We could not parse the JSON body of your request. The body must be valid JSON (check quotes, commas and brackets) sent with 'Content-Type: application/json'.",
        null,
        "invalid_json",
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return invalidRequest("The request body is empty: send a JSON object with 'Content-Type: application/json'.", null, "invalid_json");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE": {
      const contentType = String(request.headers["content-type"] ?? "none").slice(0, 100);
      return new GatewayError(`Unsupported content type '${contentType}': send the body as JSON with 'Content-Type: application/json'.`, {
        status: 415,
        type: "invalid_request_error",
        code: "unsupported_media_type",
      });
    }
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return invalidRequest("The request body does not match its Content-Length header.");
    case "FST_ERR_BAD_URL":
      return invalidRequest("The request URL is malformed.", null, "invalid_url");
  }
  // Prototype-poisoning refusals from the JSON parser.
  if (error instanceof SyntaxError || (fastifyError.statusCode === 400 && /prototype|constructor/i.test(error.message))) {
    return invalidRequest("The JSON body contains a forbidden '__proto__' or 'constructor' key.", null, "invalid_json");
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    // A client error Fastify raised that has no specific mapping: its message is safe and specific.
    return new GatewayError(error.message, { status, type: "invalid_request_error" });
  }
  return asGatewayError(error);
}
