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

  /**
   * Runs it with EVAL, body included. Replies come back in the order the
   * commands were sent, with no NOSCRIPT retry that could put a later
   * command ahead (for commands sent back to back without waiting).
   */
  async runInOrder(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    return await redis.eval(this.lua, keys.length, ...keys, ...args);
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
-- Expired members are left for the workers' heartbeats to remove: one command fewer per request.
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
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
 * Gateway, at a metrics scrape: the depth of several BullMQ queues in one
 * round trip. KEYS: per queue its wait list, active list, delayed zset,
 * prioritized zset and meta hash. Returns per queue: waiting, active,
 * delayed, prioritized, and 1 if the queue is paused (its waiting jobs are
 * then not taken).
 */
export const queueDepthScript = new RedisScript(`local counts = {}
for i = 1, #KEYS, 5 do
  counts[#counts + 1] = redis.call('LLEN', KEYS[i])
  counts[#counts + 1] = redis.call('LLEN', KEYS[i + 1])
  counts[#counts + 1] = redis.call('ZCARD', KEYS[i + 2])
  counts[#counts + 1] = redis.call('ZCARD', KEYS[i + 3])
  counts[#counts + 1] = redis.call('HEXISTS', KEYS[i + 4], 'paused')
end
return counts`);

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
 * Worker, on an attempt's first batch and on its first batch that holds
 * output: is the job still wanted (its state holds `w`, set on admission),
 * and does no other attempt own its output?
 * If so the batch is appended; with output, atomically with claiming the
 * job's output for this attempt, so only one attempt's output is ever
 * delivered. When the batch is also the last, the job's state goes with it
 * (a late re-run then finds the job unwanted).
 * KEYS: job state, gateway inbox. ARGV: attempt, inbox max length, 1 if last batch, 1 if the batch holds output, batch fields...
 * Returns 1 appended, -1 not wanted any more, -2 another attempt owns the output, -3 inbox gone (gateway gone).
 */
export const claimOutputScript = new RedisScript(`local state = redis.call('HMGET', KEYS[1], 'w', 'o')
if not state[1] then return -1 end
local owner = state[2]
if owner and owner ~= ARGV[1] then return -2 end
if not redis.call('XADD', KEYS[2], 'NOMKSTREAM', 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 5)) then return -3 end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
elseif not owner and ARGV[4] == '1' then
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
