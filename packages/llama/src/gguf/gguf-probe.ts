import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Options for {@link probeGgufInChildProcess}. */
export interface GgufProbeOptions {
  /** Kill the child and report failure after this long. Default 60 s. */
  readonly timeoutMs?: number;
  /** Aborts the probe (the child is killed). */
  readonly signal?: AbortSignal;
}

/** How the probe went. */
export type GgufProbeResult =
  | {
      readonly ok: true;
      readonly durationMs: number;
      /** Tokens in the probe's prompt. */
      readonly promptTokens: number;
    }
  | {
      readonly ok: false;
      readonly durationMs: number;
      /** One line: what went wrong, e.g. "killed by SIGABRT" or node-llama-cpp's error message. */
      readonly reason: string;
      readonly exitCode: number | null;
      readonly signal: NodeJS.Signals | null;
      readonly timedOut: boolean;
      /** The end of the child's stderr (llama.cpp's own messages, GGML_ASSERT lines). */
      readonly stderrTail: string;
    };

const RUNNER = fileURLToPath(new URL("./gguf-probe-runner.mjs", import.meta.url));
const TAIL_BYTES = 4000;

/**
 * Loads a GGUF file with node-llama-cpp (CPU, one thread) in a short-lived
 * child process, evaluates a short prompt that includes non-ASCII bytes, and
 * reports whether that worked. A second line of defence after
 * {@link checkGguf}: a file whose inconsistency the parser cannot judge may
 * abort llama.cpp, and then it is the child that dies, not the caller.
 * Costs a process start and a model load (about a second for small models).
 */
export function probeGgufInChildProcess(path: string, options: GgufProbeOptions = {}): Promise<GgufProbeResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUNNER, path], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let aborted = false;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (stdout.length > 64_000) stdout = stdout.slice(-64_000);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-TAIL_BYTES);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      child.kill("SIGKILL");
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();

    let settled = false;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      const durationMs = Math.round(performance.now() - started);
      const lastLine = stdout.trim().split("\n").at(-1) ?? "";
      let report: { ok?: boolean; message?: string; promptTokens?: number } = {};
      try {
        report = JSON.parse(lastLine) as typeof report;
      } catch {
        // no report: the child died before writing one
      }
      if (spawnError === undefined && exitCode === 0 && report.ok === true) {
        resolve({ ok: true, durationMs, promptTokens: report.promptTokens ?? 0 });
        return;
      }
      const reason = spawnError
        ? `could not start the probe: ${spawnError.message}`
        : timedOut
          ? `no answer within ${timeoutMs} ms`
          : aborted
            ? "aborted"
            : signal !== null
              ? `llama.cpp killed the process (${signal})`
              : (report.message ?? `the probe exited with code ${exitCode}`);
      resolve({ ok: false, durationMs, reason, exitCode, signal, timedOut, stderrTail: stderr.trim() });
    };
    child.once("error", (error) => finish(null, null, error));
    child.once("close", (code, signal) => finish(code, signal));
  });
}
