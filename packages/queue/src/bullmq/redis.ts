/**
 * Redis plumbing shared by the gateway and worker sides: clients made from one
 * connection setting, and the Lua scripts that keep the fleet's bookkeeping
 * atomic.
 */
import { createHash } from "node:crypto";
import type { RedisOptions as BullRedisOptions } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";

/** Where Redis is: a `redis://` / `rediss://` URL, or ioredis options. */
export type RedisConnection = string | RedisOptions;

/** Reconnect quickly and forever: a worker or gateway must come back by itself when Redis does. */
export function reconnectStrategy(maxDelayMs: number): (times: number) => number {
  return (times) => Math.min(50 * 2 ** Math.min(times, 10), maxDelayMs) + Math.floor(Math.random() * 50);
}

export function createRedis(connection: RedisConnection, overrides: RedisOptions): Redis {
  return typeof connection === "string" ? new Redis(connection, overrides) : new Redis({ ...connection, ...overrides });
}

/** Connection options in the shape BullMQ takes (it creates its own clients from them). */
export function bullConnectionOptions(connection: RedisConnection, overrides: RedisOptions): BullRedisOptions {
  // ioredis types `retryStrategy` as possibly null, BullMQ's copy of the type does not; the values are the same.
  const options = typeof connection === "string" ? { url: connection, ...overrides } : { ...connection, ...overrides };
  return options as BullRedisOptions;
}

/** Milliseconds of Redis' own clock inside a script, so hosts with skewed clocks agree on expiries. */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** A Lua script run with EVALSHA, loaded on first use (and again after a Redis restart). */
export class RedisScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Gateway, before adding a job: are there live workers on the queue, is the
 * queue under its bound, and if so mark the job wanted — one round trip.
 * KEYS: live-workers zset, BullMQ wait list, BullMQ prioritized zset, job state.
 * ARGV: max waiting, state TTL ms.
 * Returns [code, live concurrency, depth]: code 0 no live worker, 1 full, 2 admitted.
 */
export const admitScript = new RedisScript(`${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local concurrency = 0
for _, member in ipairs(live) do
  concurrency = concurrency + (tonumber(string.match(member, '#(%d+)$')) or 1)
end
local depth = redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3])
if #live == 0 then return {0, 0, depth} end
if depth >= tonumber(ARGV[1]) then return {1, concurrency, depth} end
redis.call('HSET', KEYS[4], 'w', '1')
redis.call('PEXPIRE', KEYS[4], ARGV[2])
return {2, concurrency, depth}`);

/**
 * Gateway: how many workers are live on each queue. KEYS: live-workers zsets.
 * Returns one count per key.
 */
export const liveCountScript = new RedisScript(`${NOW_MS}
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('ZCOUNT', key, '(' .. now, '+inf')
end
return counts`);

/**
 * Worker, before running a job: is it still wanted, and has an earlier attempt
 * already sent output? If neither, take a new attempt number.
 * KEYS: job state. ARGV: worker id.
 * Returns [status, attempt]: status 0 not wanted, -1 output already owned by another attempt, 1 run.
 */
export const claimAttemptScript = new RedisScript(`if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
if redis.call('HEXISTS', KEYS[1], 'o') == 1 then return {-1, 0} end
local attempt = redis.call('HINCRBY', KEYS[1], 'a', 1)
redis.call('HSET', KEYS[1], 'wk' .. attempt, ARGV[1])
return {1, attempt}`);

/**
 * Worker, on its first batch that holds output: claim the job's output for
 * this attempt and append the batch, atomically, so only one attempt's output
 * is ever delivered. When the batch is also the last, the job's state goes
 * with it (a late re-run then finds the job unwanted).
 * KEYS: job state, gateway inbox. ARGV: attempt, inbox max length, 1 if last batch, batch fields...
 * Returns 1 appended, -1 not wanted any more, -2 another attempt owns the output, -3 inbox gone (gateway gone).
 */
export const claimOutputScript = new RedisScript(`if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local owner = redis.call('HGET', KEYS[1], 'o')
if owner and owner ~= ARGV[1] then return -2 end
if redis.call('EXISTS', KEYS[2]) == 0 then return -3 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
elseif not owner then
  redis.call('HSET', KEYS[1], 'o', ARGV[1])
end
return 1`);

/**
 * Worker heartbeat: status key with a TTL, the worker registry, and one
 * live-workers entry per queue the worker is serving.
 * KEYS: status key, workers zset, live-workers zsets...
 * ARGV: ttl ms, status JSON, worker id, then one concurrency per live-workers key.
 */
export const heartbeatScript = new RedisScript(`${NOW_MS}
local ttl = tonumber(ARGV[1])
local expires = now + ttl
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], expires, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ttl)
for i = 3, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], expires, ARGV[3] .. '#' .. ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return now`);
