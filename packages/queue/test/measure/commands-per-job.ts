/**
 * Which Redis commands one fleet job costs, command by command: a gateway
 * (BullmqDispatcher) and a worker runtime with the scripted backend, in this
 * process, on the shared Redis under a random prefix; after a warm-up, one
 * job at a time under MONITOR. Commands run inside Lua scripts are listed
 * under the script that ran them. Other clients of the Redis are left out
 * (only this run's keys and scripts are kept).
 *
 *   [CONCURRENCY=4] npx tsx packages/queue/test/measure/commands-per-job.ts [script] [jobs]
 *
 * `script` is a scripted-backend script (default `echo:1`: accepted, one
 * delta, finish).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { BullmqDispatcher, llamaQueueName, serveBackend } from "../../src/index.js";
import { waitFor, waitForLiveWorkers } from "../helpers.js";
import { TEST_MODEL, collect, scriptJob } from "../jobs.js";
import { deletePrefix, randomPrefix, redisUrl } from "../redis-fixture.js";
import { ScriptedBackend } from "../scripted-backend.js";

const [script = "echo:1", jobsText = "3"] = process.argv.slice(2);
const prefix = randomPrefix();
const server = serveBackend(new ScriptedBackend([TEST_MODEL]), { connection: redisUrl, prefix, concurrencyPerModel: Number(process.env.CONCURRENCY ?? 4), heartbeatIntervalMs: 60_000, heartbeatTtlMs: 120_000 });
const dispatcher = new BullmqDispatcher({ connection: redisUrl, prefix, livenessIntervalMs: 60_000 });
const monitor = new Redis(redisUrl);
try {
  await waitFor("dispatcher ready", () => dispatcher.ready());
  await waitForLiveWorkers(redisUrl, prefix, llamaQueueName(TEST_MODEL), 1);
  for (let index = 0; index < 5; index++) await collect(dispatcher.submit(scriptJob(script)));
  await sleep(200);

  const lines: string[] = [];
  const feed = await monitor.monitor();
  feed.on("monitor", (_time: string, args: string[], source: string) => lines.push(`${source.includes("lua") ? "lua" : "net"} ${args.map((arg) => arg.slice(0, 60)).join(" ")}`));
  await sleep(100);
  const jobs = Number(jobsText);
  for (let index = 0; index < jobs; index++) await collect(dispatcher.submit(scriptJob(script)));
  await sleep(100);
  feed.disconnect();

  // Keep the commands that name our keys, and the script commands run by one of those.
  const ours: string[] = [];
  let keeping = false;
  for (const line of lines) {
    if (line.startsWith("net")) keeping = line.includes(prefix);
    if (keeping || line.includes(prefix)) ours.push(line.replaceAll(prefix, "P"));
  }
  const network = ours.filter((line) => line.startsWith("net"));
  console.log(ours.join("\n"));
  console.log(`\n${jobs} job(s) of '${script}': ${(ours.length / jobs).toFixed(1)} commands per job, ${(network.length / jobs).toFixed(1)} sent over the network (the blocking inbox read and worker fetch included)`);
} finally {
  await dispatcher.close();
  await server.close({ drainTimeoutMs: 0 });
  monitor.disconnect();
  await deletePrefix(redisUrl, prefix);
}
