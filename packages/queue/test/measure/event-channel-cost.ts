/**
 * Measures what one worker→gateway event costs over Redis: a stream entry
 * (XADD by the producer, XREAD BLOCK by one consumer reading a shared inbox)
 * against pub/sub (PUBLISH to one channel, one subscriber). Runs a private
 * redis-server so its CPU can be read from INFO; producer and consumer are
 * separate processes, as worker and gateway are.
 *
 *   npx tsx packages/queue/test/measure/event-channel-cost.ts
 */
import { spawn, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";

const role = process.argv[2];
const url = process.argv[3] ?? "";
const mode = process.argv[4] as "stream" | "pubsub";
const total = Number(process.argv[5] ?? 40_000);
const jobs = Number(process.argv[6] ?? 4);
const payload = JSON.stringify([{ type: "text-delta", index: 0, text: "tok" }]);

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function producer(): Promise<void> {
  const redis = new Redis(url);
  await redis.ping();
  const perJob = Math.floor(total / jobs);
  process.send?.("ready");
  await new Promise((resolve) => process.once("message", resolve));
  const cpu0 = cpuMs();
  // Each "job" writes its events one after another, awaiting each write, as a decode loop would.
  await Promise.all(
    Array.from({ length: jobs }, async (_, jobIndex) => {
      for (let seq = 0; seq < perJob; seq++) {
        if (mode === "stream") await redis.xadd("inbox", "MAXLEN", "~", "10000", "*", "j", `job${jobIndex}`, "s", String(seq), "e", payload);
        else await redis.publish("inbox", `job${jobIndex}|${seq}|${payload}`);
      }
    }),
  );
  process.send?.({ cpuMs: cpuMs() - cpu0 });
  await redis.quit();
}

async function consumer(): Promise<void> {
  const redis = new Redis(url);
  await redis.ping();
  const expected = Math.floor(total / jobs) * jobs;
  let received = 0;
  let cpu0 = 0;
  const done = new Promise<void>((resolve) => {
    if (mode === "pubsub") {
      redis.on("message", (_channel: string, message: string) => {
        const [, , json] = message.split("|", 3);
        JSON.parse(json ?? "[]");
        if (++received === expected) resolve();
      });
    } else {
      void (async () => {
        let last = "$";
        while (received < expected) {
          const reply = (await redis.xread("COUNT", 1000, "BLOCK", 1000, "STREAMS", "inbox", last)) as [string, [string, string[]][]][] | null;
          for (const [, entries] of reply ?? []) {
            for (const [id, fields] of entries) {
              last = id;
              JSON.parse(fields[5] ?? "[]");
              received++;
            }
          }
        }
        resolve();
      })();
    }
  });
  if (mode === "pubsub") await redis.subscribe("inbox");
  else await redis.xadd("inbox", "*", "hello", "1");
  process.send?.("ready");
  await new Promise((resolve) => process.once("message", resolve));
  cpu0 = cpuMs();
  await done;
  process.send?.({ cpuMs: cpuMs() - cpu0 });
  redis.disconnect();
}

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return (user + sys) * 1000;
}

function once<T>(child: ReturnType<typeof fork>): Promise<T> {
  return new Promise((resolve) => child.once("message", (message) => resolve(message as T)));
}

async function runMode(serverUrl: string, which: "stream" | "pubsub", admin: Redis): Promise<void> {
  await admin.del("inbox");
  const args = [serverUrl, which, String(total), String(jobs)];
  const consumerProcess = fork(process.argv[1]!, ["consumer", ...args], { execArgv: process.execArgv });
  await once(consumerProcess);
  const producerProcess = fork(process.argv[1]!, ["producer", ...args], { execArgv: process.execArgv });
  await once(producerProcess);
  const redisCpu0 = await redisCpuMs(admin);
  const started = performance.now();
  const consumerDone = once<{ cpuMs: number }>(consumerProcess);
  const producerDone = once<{ cpuMs: number }>(producerProcess);
  consumerProcess.send("go");
  producerProcess.send("go");
  const [consumerCpu, producerCpu] = await Promise.all([consumerDone, producerDone]);
  const wallMs = performance.now() - started;
  const redisCpu = (await redisCpuMs(admin)) - redisCpu0;
  const events = Math.floor(total / jobs) * jobs;
  const perEventUs = (ms: number) => ((ms * 1000) / events).toFixed(1);
  console.log(
    `${which.padEnd(7)} ${events} events, ${jobs} writers: ${Math.round(events / (wallMs / 1000))} events/s; CPU per event: ` +
      `producer ${perEventUs(producerCpu.cpuMs)} us, consumer ${perEventUs(consumerCpu.cpuMs)} us, redis ${perEventUs(redisCpu)} us, ` +
      `total ${perEventUs(producerCpu.cpuMs + consumerCpu.cpuMs + redisCpu)} us`,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "sb-measure-"));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = spawn("redis-server", ["--port", String(port), "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  const serverUrl = `redis://127.0.0.1:${port}`;
  const admin = new Redis(serverUrl, { retryStrategy: () => 50 });
  admin.on("error", () => undefined);
  try {
    await admin.ping();
    for (let round = 0; round < 3; round++) {
      await runMode(serverUrl, "stream", admin);
      await runMode(serverUrl, "pubsub", admin);
    }
  } finally {
    admin.disconnect();
    server.kill("SIGTERM");
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (role === "producer") await producer();
else if (role === "consumer") await consumer();
else await main();
