/**
 * Turns a model's `source` (see `@switchboard/catalog`'s `parseModelSource`)
 * into a local GGUF path: generated test models are made on the spot, files
 * are checked, and remote URIs are downloaded once into the models folder by
 * node-llama-cpp's own resolver (`resolveModelFile`, which uses ipull).
 *
 * What node-llama-cpp 3.21.1 does, read from its dist code and exercised in
 * the tests:
 * - `hf:user/repo:quant` asks `{endpoint}v2/{user}/{repo}/manifests/{quant}`
 *   for the file name, then downloads `{endpoint}{user}/{repo}/resolve/main/{file}`.
 *   The endpoint is `endpoints.huggingFace`, else `MODEL_ENDPOINT`, else
 *   `HF_ENDPOINT`, else https://huggingface.co/ (plain http works too).
 * - `http://` and `https://` URLs are downloaded as they are.
 * - Downloads go to `{file}.ipull` and are renamed when complete, so a cut
 *   download never looks finished; the `.ipull` file carries chunk progress,
 *   and a later call resumes from it (we keep it on abort for that reason).
 * - A cached `hf:` file is found by name without any request. A plain URL has
 *   no name known in advance (node-llama-cpp asks the server, and names the
 *   file after the URL's last segment, so two URLs ending in `model.gguf`
 *   would share one file); we give it a name (see {@link fileNameForUrl}).
 * - Its in-process download lock is held until the transfer settles; a
 *   request that stalls before its response headers can hold it after an
 *   abort until undici's own timeout.
 * - The download's metadata request ignores the abort signal, and ipull
 *   retries 5xx/429 and network errors (a refused connection included) for
 *   minutes; we stop waiting after `stallTimeoutMs` without data.
 */
import { createHash } from "node:crypto";
import { open, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { parseModelSource, type GeneratedModelSpec } from "@switchboard/catalog";
import { silentLogger, type Logger } from "@switchboard/protocol";
import { resolveModelFile } from "node-llama-cpp";

/** Bytes received so far for one model download. */
export interface DownloadProgress {
  downloadedBytes: number;
  /** 0 when the server does not say how large the file is. */
  totalBytes: number;
}

export interface ResolveModelSourceOptions {
  /** Folder for downloaded (and generated) models; created when missing. */
  modelsDir: string;
  /** Cancels the download; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Called as bytes arrive, and once more at the end with `downloadedBytes === totalBytes`. */
  onProgress?: (progress: DownloadProgress) => void;
  logger?: Logger;
  /** Makes a generated test model in `dir` (called with `modelsDir`) and returns its path: the gguf module's `ensureTestModel`. */
  generate: (spec: GeneratedModelSpec, dir: string) => Promise<string>;
  /**
   * Base URL for `hf:` URIs (a Hugging Face mirror, or a local server in tests).
   * When unset, node-llama-cpp reads `MODEL_ENDPOINT` / `HF_ENDPOINT` from the
   * environment itself, else uses https://huggingface.co/.
   */
  huggingFaceEndpoint?: string;
  /**
   * Token for gated or private Hugging Face repos. When unset, node-llama-cpp
   * looks for `HF_TOKEN` and the Hugging Face CLI's token file itself.
   */
  huggingFaceToken?: string;
  /**
   * Fail when no bytes arrive for this long, the wait for the first byte
   * included (ipull itself retries a dead server for minutes). Default
   * 60 000 ms; 0 waits forever.
   */
  stallTimeoutMs?: number;
}

/** A source that could not be turned into a usable local file. */
export class ModelSourceError extends Error {
  /** The `source` string from the configuration. */
  readonly source: string;
  /** HTTP status of the failed request, when there was one. */
  readonly status: number | undefined;

  constructor(source: string, message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ModelSourceError";
    this.source = source;
    this.status = options.status;
  }
}

/**
 * Returns the absolute path of a local GGUF file for `source`, downloading or
 * generating it first when needed. A finished download is reused by later
 * calls without touching the network.
 */
export async function resolveModelSource(source: string, options: ResolveModelSourceOptions): Promise<string> {
  const logger = options.logger ?? silentLogger;
  options.signal?.throwIfAborted();
  let parsed: ReturnType<typeof parseModelSource>;
  try {
    parsed = parseModelSource(source);
  } catch (error) {
    throw new ModelSourceError(source, `Invalid model source '${source}': ${(error as Error).message}`, { cause: error });
  }

  switch (parsed.kind) {
    case "generated": {
      const modelsDir = path.resolve(options.modelsDir);
      const file = await options.generate(parsed.spec, modelsDir);
      await requireFile(source, file);
      return path.resolve(file);
    }
    case "file": {
      const file = path.resolve(parsed.path);
      await requireFile(source, file);
      return file;
    }
    case "remote":
      return await download(parsed.uri, options, logger);
  }
}

async function requireFile(source: string, file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    throw new ModelSourceError(source, `Model file for '${source}' not found at ${file}`, { cause: error });
  }
  if (!info.isFile()) throw new ModelSourceError(source, `Model source '${source}' is not a file: ${file}`);
  await requireGgufMagic(source, file);
}

/**
 * Every GGUF file starts with the bytes `GGUF`. Checking them catches an HTML
 * error page saved under a model's name (or a wrong path) with a clear message,
 * before llama.cpp ever sees the file.
 */
async function requireGgufMagic(source: string, file: string): Promise<void> {
  const handle = await open(file, "r");
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    if (bytesRead === 4 && buffer.toString("latin1") === "GGUF") return;
  } finally {
    await handle.close();
  }
  throw new ModelSourceError(source, `Model source '${source}' is not a GGUF file (it does not start with 'GGUF'): ${file}`);
}

async function download(uri: string, options: ResolveModelSourceOptions, logger: Logger): Promise<string> {
  const { signal, onProgress } = options;
  const modelsDir = path.resolve(options.modelsDir);
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const started = Date.now();
  let lastProgress: DownloadProgress | undefined;
  let announced = false;

  // Our own abort for a stalled transfer, combined with the caller's.
  const stall = new AbortController();
  const combined = signal === undefined ? stall.signal : AbortSignal.any([signal, stall.signal]);
  let stallTimer: NodeJS.Timeout | undefined;
  const armStallTimer = () => {
    if (!(stallTimeoutMs > 0)) return;
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => {
      const seconds = Math.round(stallTimeoutMs / 100) / 10;
      stall.abort(new ModelSourceError(uri, `Could not download model '${uri}': no data received for ${seconds} s`));
    }, stallTimeoutMs);
  };

  armStallTimer();
  const resolving = resolveModelFile(uri, {
    directory: modelsDir,
    fileName: /^https?:\/\//i.test(uri) ? fileNameForUrl(uri) : undefined,
    cli: false,
    // Keep the partial `.ipull` file on abort so the next attempt resumes it.
    deleteTempFileOnCancel: false,
    signal: combined,
    ...(options.huggingFaceEndpoint !== undefined ? { endpoints: { huggingFace: options.huggingFaceEndpoint } } : {}),
    ...(options.huggingFaceToken !== undefined ? { tokens: { huggingFace: options.huggingFaceToken } } : {}),
    onProgress: ({ totalSize, downloadedSize }) => {
      armStallTimer();
      if (!announced) {
        announced = true;
        logger.info({ source: uri, modelsDir, totalBytes: totalSize }, "downloading model");
      }
      lastProgress = { downloadedBytes: downloadedSize, totalBytes: totalSize };
      onProgress?.(lastProgress);
    },
  });

  let file: string;
  try {
    // node-llama-cpp only checks the signal once the transfer starts; do not wait for its metadata request.
    file = await raceAbort(resolving, combined);
    // ipull can settle a cancelled transfer without an error.
    combined.throwIfAborted();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (stall.signal.aborted) {
      logger.warn({ source: uri, stallTimeoutMs }, "model download stalled");
      throw stall.signal.reason;
    }
    throw downloadError(uri, error);
  } finally {
    clearTimeout(stallTimer);
  }

  try {
    await requireGgufMagic(uri, file);
  } catch (error) {
    // Remove it, or every later call would find it and fail the same way without downloading again.
    await rm(file, { force: true });
    throw error;
  }
  const size = (await stat(file)).size;
  if (announced) {
    if (lastProgress?.downloadedBytes !== size || lastProgress.totalBytes !== size) onProgress?.({ downloadedBytes: size, totalBytes: size });
    logger.info({ source: uri, file, bytes: size, ms: Date.now() - started }, "downloaded model");
  } else {
    logger.debug({ source: uri, file }, "model already downloaded");
  }
  return file;
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** ipull's `StatusCodeError` and node-llama-cpp's own errors become one clear message naming the source. */
function downloadError(uri: string, error: unknown): ModelSourceError {
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === "number") {
    const statusText = (error as { statusText?: string }).statusText ?? "";
    const url = (error as { url?: string }).url ?? uri;
    return new ModelSourceError(uri, `Could not download model '${uri}': HTTP ${statusCode}${statusText ? ` ${statusText}` : ""} from ${url}`, {
      cause: error,
      status: statusCode,
    });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new ModelSourceError(uri, `Could not download model '${uri}': ${reason}`, { cause: error });
}

/** `model-00001-of-00003.gguf`: node-llama-cpp downloads every part and names them itself. */
const SPLIT_PART = /-\d{5}-of-\d{5}\.gguf$/i;

/**
 * A stable local name for a plain URL, so a later call finds the file
 * without asking the server: the URL's own file name plus a short hash of the
 * whole URL (two URLs ending in `model.gguf` must not share a file).
 * Multi-file split GGUFs are left to node-llama-cpp's naming.
 */
export function fileNameForUrl(url: string): string | undefined {
  const { pathname } = new URL(url);
  if (SPLIT_PART.test(pathname)) return undefined;
  const base = safeDecode(pathname.split("/").pop() ?? "")
    .replace(/\.gguf(\.part\d+of\d+)?$/i, "")
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._-]+/, "")
    .slice(0, 100);
  const hash = createHash("sha256").update(url).digest("hex").slice(0, 10);
  return `${base || "model"}-${hash}.gguf`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
