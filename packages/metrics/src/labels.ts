/**
 * Bounded label values. Every label that can carry a value from outside
 * (a model name in a request body, a URL, a queue name) goes through one of
 * these, so no client can grow the number of time series.
 */

/** The one value every unknown model, queue, task, backend or provider is folded into. */
export const OTHER = "other";

/** The value of a label that does not apply (a request that named no model). */
export const NONE = "none";

/** Label value for requests that matched no route, so scanners cannot grow the label set. */
export const UNMATCHED_ROUTE = "unmatched";

/** A label whose values come from a fixed list; anything else becomes {@link OTHER}. */
export class KnownValues {
  readonly #values: ReadonlySet<string>;

  constructor(values: Iterable<string>) {
    this.#values = new Set(values);
  }

  /** The value when it is known, {@link NONE} when absent, {@link OTHER} otherwise. */
  fold(value: string | null | undefined): string {
    if (value === undefined || value === null || value === "") return NONE;
    return this.#values.has(value) ? value : OTHER;
  }

  has(value: string): boolean {
    return this.#values.has(value);
  }

  values(): string[] {
    return [...this.#values];
  }
}

/**
 * A label whose values are not known in advance but are bounded by the
 * program (route templates): the first `limit` distinct values are kept, later
 * ones become {@link OTHER}. A safety net, not a policy.
 */
export class CappedValues {
  readonly #seen = new Set<string>();

  constructor(readonly limit: number) {}

  fold(value: string | null | undefined): string {
    if (value === undefined || value === null || value === "") return NONE;
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.limit) return OTHER;
    this.#seen.add(value);
    return value;
  }
}

const HTTP_METHODS = new KnownValues(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** An HTTP method; the rare ones (Node accepts about 30) share {@link OTHER}. */
export function foldMethod(method: string): string {
  return HTTP_METHODS.fold(method);
}

/** Status codes as text, made once, so folding a status allocates no string. */
const STATUS_TEXT: readonly string[] = Array.from({ length: 600 }, (_, status) => String(status));

/** A status code as text; anything outside 100-599 becomes {@link OTHER}. */
export function foldStatus(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? STATUS_TEXT[status]! : OTHER;
}

/**
 * The queue of a local model, as the fleet transport names it
 * (`llama.<percent-encoded id>`); mirrors `llamaQueueName` in
 * `@switchboard/queue`, which this package does not import.
 */
export function llamaQueueLabel(modelId: string): string {
  return `llama.${encodeURIComponent(modelId)}`;
}

/** What a model is labelled by: its catalog id, its engine, and for remote models the provider. */
export interface ModelLabelSource {
  id: string;
  /** `llama`, `hf`, ... */
  backend: string;
  /** Hugging Face inference provider (`hf-inference`, `auto`, ...). */
  provider?: string;
  /** Remote models on their own server are labelled provider `endpoint`. */
  endpointUrl?: string;
}

/** The provider label of a remote model: `endpoint` for its own server, else its provider (default `hf-inference`). */
export function providerOf(model: Pick<ModelLabelSource, "provider" | "endpointUrl">): string {
  if (model.endpointUrl) return "endpoint";
  return model.provider ?? "hf-inference";
}
