/**
 * One error family for the whole gateway. Every failure that reaches a client
 * is a {@link GatewayError}; it is mapped to the OpenAI wire shape in exactly one
 * place ({@link toOpenAIError}) and crosses the queue as {@link ErrorPayload}.
 */

/** OpenAI's `error.type` values that clients switch on. */
export type OpenAIErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error"
  | "service_unavailable_error"
  | "timeout_error";

/** The body of every error response: `{"error": {...}}`. */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: OpenAIErrorType;
    param: string | null;
    code: string | null;
  };
}

/** A {@link GatewayError} as plain JSON, so it can travel inside a job event. */
export interface ErrorPayload {
  status: number;
  type: OpenAIErrorType;
  code: string | null;
  param: string | null;
  message: string;
  /** Seconds the client should wait before retrying (sent as `Retry-After`). */
  retryAfterSeconds?: number;
}

export interface GatewayErrorOptions {
  status: number;
  type: OpenAIErrorType;
  code?: string | null;
  param?: string | null;
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly status: number;
  readonly type: OpenAIErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, options: GatewayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.status = options.status;
    this.type = options.type;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** Whether a client may usefully retry the same request later. */
  get retryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500;
  }

  toPayload(): ErrorPayload {
    const payload: ErrorPayload = {
      status: this.status,
      type: this.type,
      code: this.code,
      param: this.param,
      message: this.message,
    };
    if (this.retryAfterSeconds !== undefined) payload.retryAfterSeconds = this.retryAfterSeconds;
    return payload;
  }

  static fromPayload(payload: ErrorPayload): GatewayError {
    return new GatewayError(payload.message, payload);
  }
}

/** The OpenAI wire body for an error. */
export function toOpenAIError(error: GatewayError | ErrorPayload): OpenAIErrorBody {
  return {
    error: {
      message: error.message,
      type: error.type,
      param: error.param ?? null,
      code: error.code ?? null,
    },
  };
}

/**
 * Turns anything thrown into a GatewayError. Unknown errors become a generic
 * 500 whose message never carries the original text (it may hold paths or
 * secrets); log the original before calling this.
 */
export function asGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  return new GatewayError("The server had an error while processing your request.", {
    status: 500,
    type: "server_error",
    code: "internal_error",
    cause: error,
  });
}

// Constructors for the errors the gateway raises, so status, type and code stay consistent.

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new GatewayError(message, { status: 400, type: "invalid_request_error", param, code });

export const modelNotFound = (model: string) =>
  new GatewayError(`The model '${model}' does not exist. GET /v1/models lists the models this gateway serves.`, {
    status: 404,
    type: "invalid_request_error",
    param: "model",
    code: "model_not_found",
  });

export const contextLengthExceeded = (promptTokens: number, contextSize: number, requestedMaxTokens?: number) =>
  new GatewayError(
    `This model's maximum context length is ${contextSize} tokens. However, your messages resulted in ${promptTokens} tokens` +
      (requestedMaxTokens ? ` (${promptTokens + requestedMaxTokens} with max_tokens)` : "") +
      ". Please reduce the length of the messages.",
    { status: 400, type: "invalid_request_error", param: "messages", code: "context_length_exceeded" },
  );

export const rateLimited = (message: string, retryAfterSeconds: number, code = "rate_limit_exceeded") =>
  new GatewayError(message, { status: 429, type: "rate_limit_error", code, retryAfterSeconds });

export const modelUnavailable = (model: string, message: string, retryAfterSeconds: number) =>
  new GatewayError(message, {
    status: 503,
    type: "service_unavailable_error",
    code: "model_unavailable",
    param: "model",
    retryAfterSeconds,
  });

export const unauthorized = (message: string) =>
  new GatewayError(message, { status: 401, type: "authentication_error", code: "invalid_api_key" });

export const internalError = (message: string, code = "internal_error") =>
  new GatewayError(message, { status: 500, type: "server_error", code });
