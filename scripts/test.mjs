#!/usr/bin/env node
// The whole test suite: type-check, then vitest. Tests that need the queue use
// a real Redis: REDIS_URL when set, else one answering on 127.0.0.1:6379, else a
// private redis-server started here (and stopped afterwards), else a clear failure.
// promtool, prometheus and chromium must be installed (checked first, with the fix).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const redisInstallHint =
  "Tests need Redis. Set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server " +
  "(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) so the tests can start a private one.";

function ping(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (answer) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function onPath(program) {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

async function findRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: () => {} };
  if (await ping("127.0.0.1", 6379)) return { url: "redis://127.0.0.1:6379", stop: () => {} };
  if (!onPath("redis-server")) {
    console.error(redisInstallHint);
    process.exit(1);
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "switchboard-redis-"));
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: "ignore",
  });
  for (let attempt = 0; attempt < 50 && !(await ping("127.0.0.1", port)); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!(await ping("127.0.0.1", port))) {
    console.error(`A private redis-server did not answer on port ${port}. ${redisInstallHint}`);
    child.kill();
    process.exit(1);
  }
  console.log(`Started a private redis-server on 127.0.0.1:${port} for the tests.`);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "inherit", env });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

// The observability tests run real tools: promtool and Prometheus on /metrics, Chromium on the console.
const systemPrograms = ["promtool", "prometheus", "chromium"];
const missingPrograms = systemPrograms.filter((program) => !onPath(program));
if (missingPrograms.length > 0) {
  console.error(
    `Tests need ${missingPrograms.join(", ")} (system programs, from Debian packages). ` +
      "Install them with: apt-get install prometheus chromium (promtool comes with prometheus).",
  );
  process.exit(1);
}

const redis = await findRedis();
const env = { ...process.env, REDIS_URL: redis.url };
const bin = (name) => join("node_modules", ".bin", name);
let status = await run(bin("tsc"), ["-p", "tsconfig.json", "--noEmit"], env);
if (status === 0) status = await run(bin("vitest"), ["run", ...process.argv.slice(2)], env);
else console.error("Type-check failed; tests not run.");
redis.stop();
process.exit(status);
