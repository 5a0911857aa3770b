/**
 * The errors an upstream failure becomes. Every message names the model (its
 * catalog id) and says what went wrong in our words: never the upstream body,
 * which can echo request headers and with them the token.
 */
import { GatewayError, modelUnavailable } from "@switchboard/protocol";

export const upstreamFailed = (model: string, detail: string, retryAfterSeconds?: number) =>
  new GatewayError(`The model '${model}' failed upstream: ${detail}.`, {
    status: 502,
    type: "server_error",
    code: "upstream_error",
    param: "model",
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });

export const upstreamBadResponse = (model: string, detail: string) =>
  new GatewayError(`The model '${model}' returned an unusable response: ${detail}.`, {
    status: 502,
    type: "server_error",
    code: "upstream_bad_response",
    param: "model",
  });

export const upstreamTimeout = (model: string, timeoutMs: number) =>
  new GatewayError(`The model '${model}' did not answer within ${timeoutMs} ms.`, {
    status: 504,
    type: "timeout_error",
    code: "upstream_timeout",
    param: "model",
  });

export const upstreamRateLimited = (model: string, retryAfterSeconds: number) =>
  new GatewayError(`The model '${model}' is rate limited upstream; retry in ${retryAfterSeconds} s.`, {
    status: 503,
    type: "service_unavailable_error",
    code: "upstream_rate_limited",
    param: "model",
    retryAfterSeconds,
  });

/** The upstream refused the input itself (a 4xx other than auth): the client's request, not our fault. */
export const upstreamRejectedInput = (model: string, status: number) =>
  new GatewayError(`The model '${model}' rejected the input (upstream HTTP ${status}). Check the inputs and parameters for this task.`, {
    status: 400,
    type: "invalid_request_error",
    code: "upstream_rejected_input",
    param: "inputs",
  });

export const modelLoading = (model: string, retryAfterSeconds: number) =>
  modelUnavailable(model, `The model '${model}' is loading upstream; retry in about ${retryAfterSeconds} s.`, retryAfterSeconds);

export const circuitOpen = (model: string, retryAfterSeconds: number) =>
  modelUnavailable(
    model,
    `The model '${model}' is out of rotation after repeated upstream failures; it will be tried again in about ${retryAfterSeconds} s.`,
    retryAfterSeconds,
  );

/** The caller went away; no one reads this error, it only stops the work. */
export class CallCancelledError extends Error {
  constructor() {
    super("The call was cancelled.");
    this.name = "CallCancelledError";
  }
}

/** Replaces every occurrence of each secret in `text`. */
export function redactSecrets(text: string, secrets: Array<string | undefined>): string {
  let result = text;
  for (const secret of secrets) if (secret && secret.length >= 4) result = result.split(secret).join("[REDACTED]");
  // Bearer tokens of any kind, in case a secret arrives altered (URL-encoded, cut).
  return result.replace(/(bearer\s+)[A-Za-z0-9_\-.%]+/gi, "$1[REDACTED]").replace(/\bhf_[A-Za-z0-9]{6,}/g, "hf_[REDACTED]");
}

/** Whether an error is one the circuit breaker should count against the model. */
export function countsAsModelFailure(error: unknown): boolean {
  if (!(error instanceof GatewayError)) return !(error instanceof CallCancelledError);
  if (error.code === "model_unavailable" || error.code === "upstream_rate_limited") return false;
  return error.status >= 500;
}
