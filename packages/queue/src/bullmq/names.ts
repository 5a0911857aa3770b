/**
 * Queue names and the Redis keys of the fleet transport, in one place so the
 * gateway and the workers can never disagree about them.
 *
 * BullMQ keeps each queue under `<prefix>:<queue>:*`. Our own keys live under
 * `<prefix>:sb:*`; no queue is called `sb`, so the two never collide.
 */
import type { Job } from "@switchboard/protocol";

/** BullMQ key prefix used when none is configured. */
export const DEFAULT_PREFIX = "switchboard";

/** Queue of the remote (Hugging Face) models: one queue for all of them. */
export const HF_QUEUE = "hf";

/** Queue of the router (the HuggingGPT loop). */
export const ROUTER_QUEUE = "router";

/**
 * Queue of one local model: `llama.<modelId>`. BullMQ forbids `:` in queue
 * names, so the id is percent-encoded where it holds anything outside
 * `[A-Za-z0-9._~-]` (`qwen2.5:0.5b` → `llama.qwen2.5%3A0.5b`).
 */
export function llamaQueueName(modelId: string): string {
  return `llama.${encodeURIComponent(modelId)}`;
}

/** Default routing: every job goes to the queue of its local model. */
export function defaultQueueFor(job: Job): string {
  return llamaQueueName(job.model);
}

/**
 * BullMQ forbids `:` in custom job ids and ids that parse as integers; gateway
 * ids are opaque strings, so they are mapped, reversibly enough for logs.
 */
export function bullJobId(jobId: string): string {
  const safe = jobId.replaceAll(":", "_");
  return `${Number.parseInt(safe, 10)}` === safe ? `j${safe}` : safe;
}

/** The Redis keys of the fleet transport under one prefix. */
export class FleetKeys {
  readonly base: string;

  constructor(readonly prefix: string) {
    this.base = `${prefix}:sb`;
  }

  /**
   * A gateway's inbox: one Redis Stream per gateway instance into which
   * workers append the events of every job that gateway submitted.
   */
  inbox(gatewayId: string): string {
    return `${this.base}:inbox:${gatewayId}`;
  }

  /**
   * Per-job state hash. It exists while the request that made the job still
   * wants it (the "still wanted" key); fields: `w` (set on admission), `o`
   * the attempt (BullMQ's `attemptsStarted`) that owns the output.
   */
  jobState(jobId: string): string {
    return `${this.base}:job:${jobId}`;
  }

  /** Sorted set of live workers of a queue: member `<workerId>#<concurrency>`, score = expiry (Redis time, ms). */
  liveWorkers(queueName: string): string {
    return `${this.base}:live:${queueName}`;
  }

  /** Sorted set of every live worker (score = expiry), for `modelStates()`. */
  workers(): string {
    return `${this.base}:workers`;
  }

  /** A worker's heartbeat: its status as JSON, with a TTL. */
  workerStatus(workerId: string): string {
    return `${this.base}:worker:${workerId}`;
  }

  /** Pub/sub channel on which gateways announce cancelled jobs (message: job id). */
  cancelChannel(): string {
    return `${this.base}:cancel`;
  }
}
