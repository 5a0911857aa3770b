/**
 * Attributes a callgrind profile of a Node process to functions, JavaScript
 * compiled by V8 included: callgrind names code it has no symbol for by its
 * address, and Node's `--perf-basic-prof` map (`/tmp/perf-<pid>.map`) says
 * which JavaScript function each address range held. V8 reuses its code
 * space, so where ranges overlap, the entry written last wins.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Per function, the count of one callgrind event (`Ir`, `I1mr`, ...). */
export type FunctionCosts = Map<string, number>;

export interface CodeRange {
  start: number;
  end: number;
  name: string;
}

/** The code ranges of a perf map, sorted by start; later entries replace earlier ones at the same start. */
export function readPerfMap(path: string): CodeRange[] {
  const byStart = new Map<number, CodeRange>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const [start, size, ...name] = line.split(" ");
    if (!start || !size || name.length === 0) continue;
    const from = Number.parseInt(start, 16);
    byStart.set(from, { start: from, end: from + Number.parseInt(size, 16), name: name.join(" ").replace(/^JS:/, "") });
  }
  return [...byStart.values()].sort((a, b) => a.start - b.start);
}

function rangeAt(ranges: CodeRange[], address: number): CodeRange | undefined {
  let low = 0;
  let high = ranges.length - 1;
  let found: CodeRange | undefined;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (ranges[middle]!.start <= address) {
      found = ranges[middle];
      low = middle + 1;
    } else high = middle - 1;
  }
  return found !== undefined && address < found.end ? found : undefined;
}

/**
 * Adds the self cost of each function in one callgrind output file to
 * `costs`; compiled JavaScript is named from `code` (a perf map's ranges),
 * else by its address.
 */
export function addFunctionCosts(costs: FunctionCosts, outFile: string, event: string, code: CodeRange[] = []): void {
  const annotated = execFileSync("callgrind_annotate", ["--inclusive=no", "--threshold=100", `--show=${event}`, `--sort=${event}`, outFile], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  for (const line of annotated.split("\n")) {
    const match = /^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$/.exec(line);
    if (!match || match[2]!.includes("PROGRAM TOTALS")) continue;
    let name = match[2]!;
    const address = /^\?\?\?:0x([0-9a-f]+)/.exec(name);
    if (address) name = rangeAt(code, Number.parseInt(address[1]!, 16))?.name ?? name;
    costs.set(name, (costs.get(name) ?? 0) + Number(match[1]!.replaceAll(",", "")));
  }
}

/** Which part of the process a function belongs to, by its source (for a summary by part). */
export function partOf(name: string): string {
  // Dependencies first: a checkout's own path may contain `apps/` or `packages/`.
  const parts: [RegExp, string][] = [
    [/node_modules\/\.pnpm\/fastify@/, "Fastify"],
    [/node_modules\//, "other dependencies"],
    [/apps\/gateway\/src\/observability\.ts/, "gateway: request hooks (observability.ts)"],
    [/apps\/gateway\/src\/job-runner\.ts/, "gateway: job runner (job-runner.ts)"],
    [/packages\/metrics\/src\/(generation-timer|gateway-metrics)\.ts/, "metrics: request and job recording (gateway-metrics.ts, generation-timer.ts)"],
    [/packages\/metrics\/src\/queue-metrics\.ts/, "metrics: queue recording (queue-metrics.ts)"],
    [/packages\/metrics\/src\//, "metrics: other"],
    [/packages\/queue\/src\/in-process\.ts/, "queue: in-process transport (in-process.ts)"],
    [/(apps|packages|bench)\//, "other Switchboard code"],
    [/ node:|^node:/, "Node.js JavaScript (http, streams, events, timers)"],
    [/libc\.so|deps\/uv\//, "libc and libuv (clock reads, allocation)"],
    [/Builtins_|v8::|\[\/usr\/bin\/node\]/, "V8 and Node.js native code"],
  ];
  return parts.find(([pattern]) => pattern.test(name))?.[1] ?? "other";
}
