import { fork, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServeBackendOptions } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..", "..");

export interface WorkerProcessOptions {
  redisUrl: string;
  prefix: string;
  tag: string;
  concurrency: number;
  options?: Partial<ServeBackendOptions>;
}

/** Forks `worker-process.ts` (through tsx) and resolves once it is running. */
export async function forkWorker(options: WorkerProcessOptions): Promise<ChildProcess> {
  const child = fork(join(here, "worker-process.ts"), [], {
    cwd: repoRoot,
    execArgv: ["--import", "tsx"],
    env: {
      ...process.env,
      SB_TEST_REDIS_URL: options.redisUrl,
      SB_TEST_PREFIX: options.prefix,
      SB_TEST_TAG: options.tag,
      SB_TEST_CONCURRENCY: String(options.concurrency),
      SB_TEST_OPTIONS: JSON.stringify(options.options ?? {}),
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("exit", (code) => reject(new Error(`worker process exited early with code ${code}`)));
  });
  return child;
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** The queue metrics a worker process recorded so far (see `worker-process.ts`). */
export async function workerMetrics(child: ChildProcess): Promise<{ retried: string[]; stalled: string[] }> {
  return await new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (typeof message !== "object" || message === null || !("retried" in message)) return;
      child.off("message", onMessage);
      resolve(message as { retried: string[]; stalled: string[] });
    };
    child.on("message", onMessage);
    child.send("metrics");
  });
}
