/**
 * Downloads go through node-llama-cpp's real resolver and downloader (ipull)
 * against a local HTTP server on an ephemeral port: no network, no mocks.
 */
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fileNameForUrl, ModelSourceError, resolveModelSource, type DownloadProgress, type ResolveModelSourceOptions } from "./resolve-model-source.js";

/** Bytes that start like a GGUF file; only the transfer matters here. */
function ggufBytes(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let index = 0; index < size; index++) bytes[index] = (index * 31 + seed) & 0xff;
  bytes.write("GGUF", 0, "ascii");
  bytes.writeUInt32LE(3, 4);
  return bytes;
}

const SMALL = ggufBytes(300_000, 1);
// ipull saves progress per 5 MiB chunk, so resuming needs more than one chunk.
const CHUNK = 5 * 1024 * 1024;
const LARGE = ggufBytes(12 * 1024 * 1024, 2);

/** A file server with Range support that records every request. */
class ModelServer {
  readonly requests: string[] = [];
  /** Range requests that do not start at 0 send this many bytes, then wait for {@link release}. */
  stallAfterBytes: number | undefined;
  #held: ServerResponse[] = [];
  #server: Server;

  constructor() {
    this.#server = createServer((request, response) => this.#handle(request, response));
  }

  async start(): Promise<string> {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Ends every held response with a 404, so ipull stops cleanly. */
  release(): void {
    for (const response of this.#held.splice(0)) {
      if (!response.headersSent) response.writeHead(404, "Not Found");
      response.destroy();
    }
  }

  async close(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    this.#server.close();
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    const url = request.url ?? "/";
    this.requests.push(`${request.method} ${url}${request.headers.range ? ` ${request.headers.range}` : ""}`);
    const pathname = new URL(url, "http://localhost").pathname;

    if (pathname === "/v2/someone/Tiny-GGUF/manifests/Q4_K_M") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ ggufFile: { rfilename: "Tiny-Q4_K_M.gguf" } }));
      return;
    }
    if (pathname === "/html.gguf") {
      const page = "<!doctype html><title>Sign in</title>";
      response.writeHead(200, { "content-type": "text/html", "content-length": Buffer.byteLength(page) });
      response.end(page);
      return;
    }
    if (pathname === "/hang.gguf") {
      this.#held.push(response);
      return;
    }
    const body =
      pathname === "/models/tiny.gguf" || pathname === "/other/tiny.gguf" || pathname === "/someone/Tiny-GGUF/resolve/main/Tiny-Q4_K_M.gguf"
        ? SMALL
        : pathname === "/models/large.gguf"
          ? LARGE
          : undefined;
    if (body === undefined) {
      response.writeHead(404, "Not Found", { "content-type": "text/plain" });
      response.end("Entry not found");
      return;
    }

    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] !== "" ? Number(range[2]) : body.length - 1;
    response.writeHead(range ? 206 : 200, {
      "accept-ranges": "bytes",
      "content-length": end - start + 1,
      "content-type": "application/octet-stream",
      ...(range ? { "content-range": `bytes ${start}-${end}/${body.length}` } : {}),
    });
    if (this.stallAfterBytes !== undefined && start > 0) {
      response.write(body.subarray(start, start + this.stallAfterBytes));
      this.#held.push(response);
      return;
    }
    response.end(body.subarray(start, end + 1));
  }
}

const server = new ModelServer();
let baseUrl: string;
let root: string;
let modelsDir: string;

beforeAll(async () => {
  baseUrl = await server.start();
  root = await mkdtemp(path.join(tmpdir(), "switchboard-model-source-"));
});
afterAll(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});
let testIndex = 0;
afterEach(() => {
  server.requests.length = 0;
  server.stallAfterBytes = undefined;
  server.release();
});

async function freshModelsDir(): Promise<string> {
  modelsDir = path.join(root, `models-${++testIndex}`);
  return modelsDir;
}

const noGenerator: ResolveModelSourceOptions["generate"] = async () => {
  throw new Error("generate must not be called for this source");
};

function options(extra: Partial<ResolveModelSourceOptions> = {}): ResolveModelSourceOptions {
  // Point hf: at nothing unless a test says otherwise, whatever HF_ENDPOINT the machine has.
  return { modelsDir, generate: noGenerator, huggingFaceEndpoint: "http://hf.invalid/", ...extra };
}

describe("resolveModelSource: remote sources through node-llama-cpp", () => {
  it("downloads an http URL into modelsDir, reporting progress up to the total", async () => {
    await freshModelsDir();
    const progress: DownloadProgress[] = [];
    const file = await resolveModelSource(`${baseUrl}/models/tiny.gguf`, options({ onProgress: (update) => progress.push({ ...update }) }));

    expect(path.dirname(file)).toBe(modelsDir);
    expect(path.basename(file)).toMatch(/^tiny-[0-9a-f]{10}\.gguf$/);
    expect((await readFile(file)).equals(SMALL)).toBe(true);
    expect(await readdir(modelsDir)).toEqual([path.basename(file)]);

    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ downloadedBytes: SMALL.length, totalBytes: SMALL.length });
    for (const [index, update] of progress.entries()) {
      expect(update.totalBytes).toBe(SMALL.length);
      if (index > 0) expect(update.downloadedBytes).toBeGreaterThanOrEqual(progress[index - 1]!.downloadedBytes);
    }
    expect(server.requests.every((request) => request.startsWith("GET /models/tiny.gguf"))).toBe(true);
  });

  it("reuses a finished download without any request", async () => {
    await freshModelsDir();
    const first = await resolveModelSource(`${baseUrl}/models/tiny.gguf`, options());
    server.requests.length = 0;
    const progress: DownloadProgress[] = [];
    const second = await resolveModelSource(`${baseUrl}/models/tiny.gguf`, options({ onProgress: (update) => progress.push(update) }));
    expect(second).toBe(first);
    expect(server.requests).toEqual([]);
    expect(progress).toEqual([]);
  });

  it("keeps two URLs with the same file name apart", async () => {
    await freshModelsDir();
    const first = await resolveModelSource(`${baseUrl}/models/tiny.gguf`, options());
    const second = await resolveModelSource(`${baseUrl}/other/tiny.gguf`, options());
    expect(second).not.toBe(first);
    expect(server.requests.some((request) => request.startsWith("GET /other/tiny.gguf"))).toBe(true);
  });

  it("resolves hf: URIs through the configured Hugging Face endpoint, once", async () => {
    await freshModelsDir();
    const endpoint = `${baseUrl}/`;
    const file = await resolveModelSource("hf:someone/Tiny-GGUF:Q4_K_M", options({ huggingFaceEndpoint: endpoint }));
    expect(file).toBe(path.join(modelsDir, "hf_someone_Tiny.Q4_K_M.gguf"));
    expect((await readFile(file)).equals(SMALL)).toBe(true);
    expect(server.requests[0]).toBe("GET /v2/someone/Tiny-GGUF/manifests/Q4_K_M");
    expect(server.requests.slice(1).every((request) => request.startsWith("GET /someone/Tiny-GGUF/resolve/main/Tiny-Q4_K_M.gguf?download=true"))).toBe(true);

    server.requests.length = 0;
    expect(await resolveModelSource("hf:someone/Tiny-GGUF:Q4_K_M", options({ huggingFaceEndpoint: endpoint }))).toBe(file);
    expect(server.requests).toEqual([]);
  });

  it("names the source and the HTTP status when the file does not exist", async () => {
    await freshModelsDir();
    const source = `${baseUrl}/models/missing.gguf`;
    const error = await resolveModelSource(source, options()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelSourceError);
    expect((error as ModelSourceError).message).toBe(`Could not download model '${source}': HTTP 404 Not Found from ${source}`);
    expect((error as ModelSourceError).status).toBe(404);
    expect((error as ModelSourceError).source).toBe(source);
    expect(await readdir(modelsDir).catch(() => [])).toEqual([]);
  });

  it("names the source when the Hugging Face repo or quant does not exist", async () => {
    await freshModelsDir();
    const error = await resolveModelSource("hf:someone/Nothing-GGUF:Q4_K_M", options({ huggingFaceEndpoint: `${baseUrl}/` })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelSourceError);
    expect((error as Error).message).toMatch(/^Could not download model 'hf:someone\/Nothing-GGUF:Q4_K_M': .*Q4_K_M.*does not exist/);
  });

  it("stops on abort without leaving a file that looks complete, and the next attempt resumes", async () => {
    await freshModelsDir();
    const source = `${baseUrl}/models/large.gguf`;
    // Parallel range requests: the one from byte 0 completes its 5 MiB chunk, the others stall.
    server.stallAfterBytes = 64 * 1024;
    const controller = new AbortController();
    let aborting = false;
    const attempt = resolveModelSource(
      source,
      options({
        signal: controller.signal,
        onProgress: ({ downloadedBytes }) => {
          // Give ipull a moment to record the finished chunk before aborting.
          if (downloadedBytes >= CHUNK && !aborting) {
            aborting = true;
            setTimeout(() => controller.abort(), 250);
          }
        },
      }),
    );
    const error = await attempt.catch((caught: unknown) => caught);
    expect((error as Error).name).toBe("AbortError");
    const left = await readdir(modelsDir);
    expect(left.filter((name) => name.endsWith(".gguf"))).toEqual([]);
    expect(left.filter((name) => name.endsWith(".gguf.ipull"))).toHaveLength(1);

    server.release();
    server.stallAfterBytes = undefined;
    server.requests.length = 0;
    const progress: DownloadProgress[] = [];
    const file = await resolveModelSource(source, options({ onProgress: (update) => progress.push(update) }));
    expect((await readFile(file)).equals(LARGE)).toBe(true);
    expect(await readdir(modelsDir)).toEqual([path.basename(file)]);
    // Resumed: the first chunk was not fetched again.
    expect(server.requests.filter((request) => request.includes("bytes=0-"))).toEqual([]);
    expect(progress[0]!.downloadedBytes).toBeGreaterThanOrEqual(CHUNK);
  });

  it("rejects and removes a download that is not a GGUF file, so the next call downloads again", async () => {
    await freshModelsDir();
    const source = `${baseUrl}/html.gguf`;
    await expect(resolveModelSource(source, options())).rejects.toThrow(`Model source '${source}' is not a GGUF file`);
    expect(await readdir(modelsDir)).toEqual([]);
    server.requests.length = 0;
    await expect(resolveModelSource(source, options())).rejects.toThrow(ModelSourceError);
    expect(server.requests.length).toBeGreaterThan(0);
  });

  it("rejects at once with an already-aborted signal, without a request", async () => {
    await freshModelsDir();
    const controller = new AbortController();
    controller.abort(new Error("shutting down"));
    await expect(resolveModelSource(`${baseUrl}/models/tiny.gguf`, options({ signal: controller.signal }))).rejects.toThrow("shutting down");
    expect(server.requests).toEqual([]);
  });

  it("gives up on a server that never answers after stallTimeoutMs", async () => {
    await freshModelsDir();
    const source = `${baseUrl}/hang.gguf`;
    const started = Date.now();
    const error = await resolveModelSource(source, options({ stallTimeoutMs: 300 })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelSourceError);
    expect((error as Error).message).toBe(`Could not download model '${source}': no data received for 0.3 s`);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("resolveModelSource: local sources", () => {
  it("calls the injected generator for generated: sources", async () => {
    await freshModelsDir();
    const calls: [string, string][] = [];
    const file = await resolveModelSource("generated:25m", {
      modelsDir,
      generate: async (spec, dir) => {
        calls.push([spec, dir]);
        await mkdir(dir, { recursive: true });
        const target = path.join(dir, `test-${spec}.gguf`);
        await writeFile(target, SMALL);
        return target;
      },
    });
    expect(calls).toEqual([["25m", modelsDir]]);
    expect(file).toBe(path.join(modelsDir, "test-25m.gguf"));
  });

  it("fails clearly when the generator returns no file", async () => {
    await freshModelsDir();
    await expect(resolveModelSource("generated:tiny", { modelsDir, generate: async (_spec, dir) => path.join(dir, "nothing.gguf") })).rejects.toThrow(
      /Model file for 'generated:tiny' not found at .*nothing\.gguf/,
    );
  });

  it("accepts an existing GGUF file path and rejects a missing file, a folder or another kind of file", async () => {
    await freshModelsDir();
    await mkdir(modelsDir, { recursive: true });
    const file = path.join(modelsDir, "local.gguf");
    await writeFile(file, SMALL);
    expect(await resolveModelSource(file, options())).toBe(file);
    expect(await resolveModelSource(path.relative(process.cwd(), file), options())).toBe(file);
    await expect(resolveModelSource(path.join(modelsDir, "absent.gguf"), options())).rejects.toThrow(/not found at .*absent\.gguf/);
    await expect(resolveModelSource(modelsDir, options())).rejects.toThrow(/is not a file/);
    const notGguf = path.join(modelsDir, "notes.txt");
    await writeFile(notGguf, "hello");
    await expect(resolveModelSource(notGguf, options())).rejects.toThrow(/is not a GGUF file/);
    expect(server.requests).toEqual([]);
  });

  it("rejects unknown generated specs", async () => {
    await expect(resolveModelSource("generated:huge", options())).rejects.toThrow(ModelSourceError);
  });
});

describe("fileNameForUrl", () => {
  it("keeps the URL's file name, adds a hash of the whole URL, and is stable", () => {
    const name = fileNameForUrl("https://example.com/a/Model%20One.Q4_K_M.gguf?download=true");
    expect(name).toMatch(/^Model_One\.Q4_K_M-[0-9a-f]{10}\.gguf$/);
    expect(fileNameForUrl("https://example.com/a/Model%20One.Q4_K_M.gguf?download=true")).toBe(name);
    expect(fileNameForUrl("https://example.com/b/Model%20One.Q4_K_M.gguf?download=true")).not.toBe(name);
    expect(fileNameForUrl("https://example.com/")).toMatch(/^model-[0-9a-f]{10}\.gguf$/);
    expect(fileNameForUrl("https://example.com/..%2F..%2Fetc%2Fpasswd")).toMatch(/^etc_passwd-[0-9a-f]{10}\.gguf$/);
  });

  it("leaves multi-file split GGUFs to node-llama-cpp", () => {
    expect(fileNameForUrl("https://example.com/m-00001-of-00003.gguf")).toBeUndefined();
  });
});
