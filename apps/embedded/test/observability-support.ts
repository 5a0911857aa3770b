/**
 * Shared pieces of the observability tests: a pino logger whose lines the
 * test can search, a real Prometheus in a temporary folder scraping given
 * targets every second, and PromQL queries through its HTTP API.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino, type Logger as PinoLogger } from "pino";
import { requireProgram } from "@switchboard/metrics/testing";

export interface CapturedLog {
  logger: PinoLogger;
  lines: Record<string, unknown>[];
  /** Lines whose JSON mentions `text` anywhere. */
  mentioning(text: string): Record<string, unknown>[];
}

/** A pino logger at `level` that keeps every line, parsed. */
export function captureLog(level = "debug"): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const logger = pino(
    { level },
    {
      write(line: string) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, mentioning: (text) => lines.filter((_line, index) => raw[index]!.includes(text)) };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
    server.on("error", reject);
  });
}

export interface PrometheusServer {
  url: string;
  /** Instant query; returns the result vector. */
  query(expression: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Resolves once every target has been scraped `times` more times since the call. */
  scrapes(times: number): Promise<void>;
  log(): string;
  close(): Promise<void>;
}

/** Starts the Debian `prometheus` with a 1 s scrape of each job's targets (`host:port`). */
export async function startPrometheus(jobs: Record<string, string[]>): Promise<PrometheusServer> {
  requireProgram("prometheus");
  const dir = mkdtempSync(join(tmpdir(), "switchboard-prometheus-"));
  const port = await freePort();
  const scrapeConfigs = Object.entries(jobs)
    .map(([job, targets]) => `  - job_name: ${job}\n    static_configs:\n      - targets: [${targets.map((target) => `"${target}"`).join(", ")}]`)
    .join("\n");
  writeFileSync(join(dir, "prometheus.yml"), `global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n${scrapeConfigs}\n`);
  let output = "";
  const child: ChildProcess = spawn(
    "prometheus",
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn", "--web.enable-lifecycle"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${output}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`prometheus did not become ready: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const query: PrometheusServer["query"] = async (expression) => {
    const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expression)}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== "success") throw new Error(`query failed: ${expression}: ${body.error}`);
    return body.data!.result;
  };
  return {
    url,
    query,
    async scrapes(times) {
      // Scrapes so far of the least-scraped target. Prometheus syncs new targets after about 5 s.
      const targets = Object.values(jobs).flat().length;
      const scraped = async () => {
        const counts = await query("count_over_time(up[1h])");
        return counts.length < targets ? 0 : Math.min(...counts.map((sample) => Number(sample.value[1])));
      };
      const wanted = (await scraped()) + times;
      const deadline = Date.now() + 30_000;
      while ((await scraped()) < wanted) {
        if (Date.now() > deadline) throw new Error(`targets not scraped ${times} more times: ${output}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    log: () => output,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The queries of a Grafana dashboard JSON, with `$__rate_interval` made concrete. */
export function dashboardQueries(dashboard: { panels: { title: string; type: string; targets?: { expr: string }[] }[] }, rateInterval: string): { panel: string; expr: string }[] {
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr.replaceAll("$__rate_interval", rateInterval) })));
}
