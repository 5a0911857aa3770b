/**
 * Fleet mode, worker side: serves a {@link Backend}'s models from their BullMQ
 * queues and streams each job's events into the submitting gateway's inbox.
 *
 * A worker is a backend plus this transport: the backend is the same one the
 * in-process dispatcher runs.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { WaitingError, Worker, type Job as BullJob } from "bullmq";
import type { Redis } from "ioredis";
import {
  GatewayError,
  JobAbortController,
  asGatewayError,
  lazyChild,
  silentLogger,
  type Backend,
  type ErrorPayload,
  type JobEvent,
  type Logger,
  type ModelState,
} from "@switchboard/protocol";
import { EventWriter, type WriterStop } from "./event-writer.js";
import { DEFAULT_PREFIX, FleetKeys, llamaQueueName } from "./names.js";
import { bullConnectionOptions, createRedis, heartbeatScript, reconnectStrategy, type RedisConnection } from "./redis.js";
import type { QueueMetrics } from "../queue-metrics.js";
import type { JobEnvelope } from "./wire.js";

/** One queue a worker serves. */
export interface ServedQueue {
  name: string;
  /** Models whose jobs arrive on it; the queue is served once one of them is ready. */
  models: string[];
  /** Jobs run at once from this queue (for a llama model: its sequences). */
  concurrency: number;
}

export interface ServeBackendOptions {
  /** Redis URL or ioredis options. */
  connection: RedisConnection;
  /** BullMQ key prefix shared with the gateway. Default `switchboard`. */
  prefix?: string;
  /** Queues to serve. Default: one `llama.<model>` queue per model of the backend. */
  queues?: ServedQueue[];
  /** Concurrency of each default queue. Default 1. */
  concurrencyPerModel?: number | ((modelId: string) => number);
  /** BullMQ job lock, ms: a job whose lock is not renewed in time is re-run elsewhere. Default 30000. */
  lockDuration?: number;
  /** BullMQ lock renewal period, ms. Default lockDuration / 2. */
  lockRenewTime?: number;
  /** BullMQ stalled-job check period, ms. Default 30000. */
  stalledInterval?: number;
  /** Times a job may stall and be re-run before BullMQ fails it. Default 1. */
  maxStalledCount?: number;
  /** Heartbeat period, ms. Default 1000. */
  heartbeatIntervalMs?: number;
  /** Heartbeat lifetime, ms: a worker silent this long is dead to the gateways. Default 3 × interval. */
  heartbeatTtlMs?: number;
  /**
   * On close, how long running jobs may finish. Past it they are cancelled: a
   * job none of whose output reached its client yet goes back to its queue
   * for another worker; the others end with an error event. Default 30000.
   */
  drainTimeoutMs?: number;
  /** A queue with waiting jobs that this worker, idle, has not taken for this long gets a fresh BullMQ worker. Default 10000. */
  stuckAfterMs?: number;
  /** Seconds an idle BullMQ worker blocks waiting for a job before polling again. Default 5 (BullMQ's). */
  drainDelay?: number;
  /** BullMQ's delay before retrying a failed Redis call, ms. Default 1000 (BullMQ's own is 15000). */
  retryDelayMs?: number;
  /** Redis command timeout, ms. Default 5000. */
  commandTimeoutMs?: number;
  /**
   * How long a job's `accepted` waits for its first output to share one inbox
   * write, ms (a short job then costs one write, not two). Default 50; 0
   * sends it at once.
   */
  acceptedHoldMs?: number;
  /** Longest reconnect back-off, ms. Default 1000. */
  reconnectMaxDelayMs?: number;
  logger?: Logger;
  /**
   * Queue metrics of this worker: jobs re-run here (an attempt after the
   * first: the earlier one stalled, died or was handed back at shutdown) and
   * stalled jobs (BullMQ's `stalled`, as this worker's checker saw them).
   * Waits, run times and outcomes are the gateway's to record.
   */
  metrics?: Pick<QueueMetrics, "jobRetried" | "jobStalled" | "queueServed">;
  /** Stable id for logs and the heartbeat. Default `<hostname>-<pid>-<random>`. */
  workerId?: string;
}

/** What a worker's heartbeat publishes (JSON at `<prefix>:sb:worker:<id>`). */
export interface WorkerStatus {
  workerId: string;
  backend: string;
  startedAt: number;
  /** Closing: finishing its running jobs, taking no new ones. */
  draining: boolean;
  models: ModelState[];
  queues: { name: string; models: string[]; concurrency: number; serving: boolean; running: number }[];
}

/** A running worker runtime. */
export interface BackendServer {
  readonly workerId: string;
  /** Jobs running now. */
  running(): number;
  /** Latest status, as published. */
  status(): WorkerStatus;
  /**
   * Stops taking work, lets running jobs finish (up to `drainTimeoutMs`; then
   * a job with no output out yet goes back to its queue for another worker,
   * the others end with an error event), and closes the Redis connections.
   * Does not close the backend.
   */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
}

type AbortReason = "cancelled" | "not-wanted" | "deadline" | "shutdown" | WriterStop;
/** How a job's attempt on this worker ended: its abort reason, or one of these. */
type JobOutcome = AbortReason | "completed" | "error" | "failed" | "handed-back";

interface RunningJob {
  jobId: string;
  controller: JobAbortController;
  reason: AbortReason | undefined;
}

interface QueueSlot {
  queue: ServedQueue;
  worker: Worker | undefined;
  running: number;
  idleWithWaitingSince: number | undefined;
}

/** Starts serving `backend` over BullMQ. Returns once the connections are set up (Redis may still be down). */
export function serveBackend(backend: Backend, options: ServeBackendOptions): BackendServer {
  return new WorkerRuntime(backend, options);
}

class WorkerRuntime implements BackendServer {
  readonly workerId: string;
  readonly #backend: Backend;
  readonly #options: ServeBackendOptions;
  readonly #keys: FleetKeys;
  readonly #logger: Logger;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #slots: QueueSlot[];
  readonly #running = new Map<string, Set<RunningJob>>();
  readonly #startedAt = Date.now();
  readonly #heartbeatIntervalMs: number;
  readonly #heartbeatTtlMs: number;
  readonly #heartbeat: NodeJS.Timeout;
  #beating = false;
  #closing: Promise<void> | undefined;
  /** BullMQ workers replaced by the watchdog, finishing what they run. */
  readonly #retiring = new Set<Promise<void>>();

  constructor(backend: Backend, options: ServeBackendOptions) {
    this.workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.#backend = backend;
    this.#options = options;
    this.#keys = new FleetKeys(options.prefix ?? DEFAULT_PREFIX);
    this.#logger = (options.logger ?? silentLogger).child({ component: "worker-runtime", worker: this.workerId });
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? 1000;
    this.#heartbeatTtlMs = options.heartbeatTtlMs ?? 3 * this.#heartbeatIntervalMs;
    const concurrency = options.concurrencyPerModel ?? 1;
    const queues =
      options.queues ??
      backend.models().map((model) => ({
        name: llamaQueueName(model),
        models: [model],
        concurrency: typeof concurrency === "function" ? concurrency(model) : concurrency,
      }));
    this.#slots = queues.map((queue) => ({ queue, worker: undefined, running: 0, idleWithWaitingSince: undefined }));
    for (const queue of queues) options.metrics?.queueServed(queue.name);

    const retryStrategy = reconnectStrategy(options.reconnectMaxDelayMs ?? 1000);
    this.#redis = createRedis(options.connection, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 5000,
      retryStrategy,
      connectionName: `switchboard-worker-${this.workerId}`,
    });
    this.#subscriber = createRedis(options.connection, {
      retryStrategy,
      commandTimeout: options.commandTimeoutMs ?? 5000,
      connectionName: `switchboard-worker-cancel-${this.workerId}`,
    });
    for (const client of [this.#redis, this.#subscriber]) {
      client.on("error", (error: Error) => this.#logger.debug({ err: error }, "redis connection error"));
    }
    this.#redis.on("ready", () => void this.#beat());
    this.#subscriber.on("message", (_channel: string, jobId: string) => this.#abort(jobId, "cancelled"));
    this.#subscriber.subscribe(this.#keys.cancelChannel()).catch((error: unknown) => this.#logger.warn({ err: error }, "cancel subscription failed"));

    this.#heartbeat = setInterval(() => void this.#beat(), this.#heartbeatIntervalMs);
    void this.#beat();
  }

  running(): number {
    let count = 0;
    for (const jobs of this.#running.values()) count += jobs.size;
    return count;
  }

  status(): WorkerStatus {
    return {
      workerId: this.workerId,
      backend: this.#backend.name,
      startedAt: this.#startedAt,
      draining: this.#closing !== undefined,
      models: this.#backend.modelStates(),
      queues: this.#slots.map((slot) => ({
        name: slot.queue.name,
        models: slot.queue.models,
        concurrency: slot.queue.concurrency,
        serving: slot.worker !== undefined && !this.#closing,
        running: slot.running,
      })),
    };
  }

  close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(options.drainTimeoutMs ?? this.#options.drainTimeoutMs ?? 30_000);
    return this.#closing;
  }

  async #close(drainTimeoutMs: number): Promise<void> {
    this.#logger.info({ running: this.running(), drainTimeoutMs }, "worker closing: no new jobs");
    // Out of the queues' live sets at once, so gateways route nothing new here; the heartbeat
    // itself goes on while jobs drain, or gateways would take this worker for dead. A beat already
    // in flight could re-add the live entries after the withdrawal: let it land first.
    while (this.#beating) await sleep(10);
    await this.#withdraw(false);
    const cancelTimer = setTimeout(() => {
      for (const jobs of this.#running.values()) for (const job of jobs) this.#abortJob(job, "shutdown");
    }, drainTimeoutMs);
    const workers = this.#slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
    const closed = Promise.allSettled([...workers.map((worker) => worker.close()), ...this.#retiring]);
    // A graceful BullMQ close ends with QUIT, which waits forever on a half-open socket: past the
    // drain time (and a grace for cancelled jobs to write their last event), cut the connections.
    const forced = setTimeout(() => {
      this.#logger.warn({}, "BullMQ workers did not close in time; disconnecting them");
      for (const worker of workers) void worker.disconnect().catch(() => undefined);
    }, drainTimeoutMs + 2000);
    await closed;
    // Jobs of a BullMQ worker the watchdog replaced are not awaited by BullMQ.
    for (const until = Date.now() + drainTimeoutMs + 2000; this.running() > 0 && Date.now() < until; ) await sleep(20);
    clearTimeout(forced);
    clearTimeout(cancelTimer);
    clearInterval(this.#heartbeat);
    while (this.#beating) await sleep(10);
    await this.#withdraw(true);
    this.#subscriber.disconnect();
    this.#redis.disconnect();
    this.#logger.info({}, "worker closed");
  }

  /** Takes this worker out of the queues' live sets, and with `entirely` out of the registry too. */
  async #withdraw(entirely: boolean): Promise<void> {
    if (this.#redis.status !== "ready") return;
    const pipeline = this.#redis.pipeline();
    for (const slot of this.#slots) pipeline.zrem(this.#keys.liveWorkers(slot.queue.name), `${this.workerId}#${slot.queue.concurrency}`);
    if (entirely) pipeline.zrem(this.#keys.workers(), this.workerId).del(this.#keys.workerStatus(this.workerId));
    await pipeline.exec().catch(() => undefined);
  }

  #startWorker(slot: QueueSlot): void {
    const options = this.#options;
    const worker = new Worker(slot.queue.name, (job: BullJob, token?: string) => this.#process(slot, job, token), {
      connection: bullConnectionOptions(options.connection, {
        maxRetriesPerRequest: null,
        retryStrategy: reconnectStrategy(options.reconnectMaxDelayMs ?? 1000),
      }),
      prefix: this.#keys.prefix,
      name: this.workerId,
      concurrency: slot.queue.concurrency,
      lockDuration: options.lockDuration ?? 30_000,
      ...(options.lockRenewTime === undefined ? {} : { lockRenewTime: options.lockRenewTime }),
      stalledInterval: options.stalledInterval ?? 30_000,
      maxStalledCount: options.maxStalledCount ?? 1,
      runRetryDelay: options.retryDelayMs ?? 1000,
      drainDelay: options.drainDelay ?? 5,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    });
    worker.on("error", (error: Error) => this.#logger.debug({ err: error, queue: slot.queue.name }, "bullmq worker error"));
    worker.on("stalled", (jobId: string) => {
      this.#logger.warn({ jobId, queue: slot.queue.name }, "job stalled; BullMQ will re-run it");
      options.metrics?.jobStalled(slot.queue.name);
    });
    worker.on("lockRenewalFailed", (jobIds: string[]) => this.#logger.warn({ jobIds, queue: slot.queue.name }, "job lock renewal failed"));
    slot.worker = worker;
    this.#logger.info({ queue: slot.queue.name, concurrency: slot.queue.concurrency }, "serving queue");
  }

  /** Heartbeat, plus the checks that ride on it: model readiness, missed cancels, stuck BullMQ workers. */
  async #beat(): Promise<void> {
    if (this.#beating) return;
    this.#beating = true;
    try {
      if (!this.#closing) this.#startReadyQueues();
      if (this.#redis.status !== "ready") return;
      const status = this.status();
      // A draining worker still beats (its running jobs are alive) but serves no queue.
      const serving = this.#closing ? [] : this.#slots.filter((slot) => slot.worker !== undefined);
      await heartbeatScript.run(
        this.#redis,
        [this.#keys.workerStatus(this.workerId), this.#keys.workers(), ...serving.map((slot) => this.#keys.liveWorkers(slot.queue.name))],
        [this.#heartbeatTtlMs, JSON.stringify(status), this.workerId, ...serving.map((slot) => slot.queue.concurrency)],
      );
      await Promise.all([this.#checkRunningAndQueues(serving), this.#pingSubscriber()]);
    } catch (error) {
      this.#logger.debug({ err: error }, "heartbeat failed");
      this.#resetIfHalfOpen(this.#redis, error);
    } finally {
      this.#beating = false;
    }
  }

  /** The cancel subscription carries no traffic of its own: ping it, or a half-open socket would go unnoticed. */
  async #pingSubscriber(): Promise<void> {
    if (this.#subscriber.status !== "ready") return;
    await this.#subscriber.ping().catch((error: unknown) => this.#resetIfHalfOpen(this.#subscriber, error));
  }

  /** A timed-out command on a connection that looks ready means a half-open socket: reconnect it. */
  #resetIfHalfOpen(client: Redis, error: unknown): void {
    if (this.#closing || client.status !== "ready") return;
    if (error instanceof Error && /timed out/i.test(error.message)) {
      this.#logger.warn({}, "Redis stopped answering; reconnecting");
      client.disconnect(true);
    }
  }

  #startReadyQueues(): void {
    const states = new Map(this.#backend.modelStates().map((state) => [state.id, state.state]));
    for (const slot of this.#slots) {
      if (slot.worker || this.#closing) continue;
      // A model the backend reports nothing about (remote models) counts as ready.
      if (slot.queue.models.some((model) => (states.get(model) ?? "ready") === "ready")) this.#startWorker(slot);
    }
  }

  async #checkRunningAndQueues(serving: QueueSlot[]): Promise<void> {
    const jobIds = [...this.#running.keys()];
    const pipeline = this.#redis.pipeline();
    for (const jobId of jobIds) pipeline.exists(this.#keys.jobState(jobId));
    for (const slot of serving) pipeline.llen(slot.worker!.keys.wait!);
    const results = (await pipeline.exec()) ?? [];
    jobIds.forEach((jobId, index) => {
      // A cancel broadcast can be missed (subscriber reconnecting): the key is the source of truth.
      if (results[index]?.[1] === 0) this.#abort(jobId, "not-wanted");
    });
    const now = Date.now();
    const stuckAfterMs = this.#options.stuckAfterMs ?? 10_000;
    serving.forEach((slot, index) => {
      const waiting = Number(results[jobIds.length + index]?.[1] ?? 0);
      if (waiting === 0 || slot.running >= slot.queue.concurrency) {
        slot.idleWithWaitingSince = undefined;
        return;
      }
      slot.idleWithWaitingSince ??= now;
      if (now - slot.idleWithWaitingSince < stuckAfterMs) return;
      // Jobs wait, Redis answers, yet this worker has free slots and takes none: its fetch loop is
      // wedged (BullMQ #2964, #4585). Start a fresh BullMQ worker; the old one finishes what it runs.
      this.#logger.warn({ queue: slot.queue.name, waiting, running: slot.running }, "BullMQ worker takes no jobs; replacing it");
      slot.idleWithWaitingSince = undefined;
      const stale = slot.worker;
      slot.worker = undefined;
      if (stale) {
        // Forced: its connections are suspect and a graceful close could wait on a dead socket forever.
        // Jobs it runs carry on (their events go through this runtime's own connection).
        const retiring = stale.close(true).catch(() => undefined);
        this.#retiring.add(retiring);
        void retiring.then(() => this.#retiring.delete(retiring));
      }
      this.#startWorker(slot);
    });
  }

  async #process(slot: QueueSlot, bullJob: BullJob, token: string | undefined): Promise<void> {
    const envelope = bullJob.data as JobEnvelope;
    const job = envelope.job;
    // Made when the job first logs: most jobs never do.
    const logger = lazyChild(this.#logger, { requestId: job.requestId, jobId: job.id, model: job.model, backend: this.#backend.name });
    const running: RunningJob = { jobId: job.id, controller: new JobAbortController(), reason: undefined };
    // Registered before the first write, so a cancel that races it still finds the job.
    let jobs = this.#running.get(job.id);
    if (!jobs) this.#running.set(job.id, (jobs = new Set()));
    jobs.add(running);
    slot.running++;
    const startedAt = performance.now();
    // BullMQ counts every start of a job (a re-run after a stall or a hand-back included): that is
    // the attempt. Whether it is still wanted, and not another attempt's, is checked by its first write.
    const attempt = Math.max(1, bullJob.attemptsStarted);
    /** How this attempt ended, for its log line. */
    let outcome: JobOutcome = "failed";
    let deadlineTimer: NodeJS.Timeout | undefined;
    let beginTimer: NodeJS.Immediate | undefined;
    try {
      const stateKey = this.#keys.jobState(job.id);
      const signal = running.controller.signal;
      const writer = new EventWriter({
        redis: this.#redis,
        inbox: envelope.inbox,
        stateKey,
        jobId: job.id,
        inboxMaxLength: envelope.inboxMaxLength,
        ...(this.#options.acceptedHoldMs !== undefined ? { acceptedHoldMs: this.#options.acceptedHoldMs } : {}),
        onStop: (reason, error) => {
          if (reason === "redis-error") logger.warn({ err: error }, "Redis failed under the job; aborting it");
          else logger.info({ reason }, "stopping the job: nobody wants its output");
          this.#abortJob(running, reason);
        },
      });
      if (attempt > 1) this.#options.metrics?.jobRetried(slot.queue.name);
      // Writing starts after this turn of the event loop: a job whose events all came at once (a
      // refusal, a cached or trivial answer) goes out in one write, its end marker included.
      beginTimer = setImmediate(() => writer.begin(attempt));
      const deadlineAt = envelope.deadlineAt ?? job.deadlineAt;
      if (deadlineAt !== undefined) {
        deadlineTimer = setTimeout(() => this.#abortJob(running, "deadline"), Math.max(0, deadlineAt - Date.now()));
      }
      let sawError = false;
      try {
        for await (const event of this.#backend.run(job, { signal, logger })) {
          if (event.type === "error") sawError = true;
          writer.push(event.type === "accepted" ? { ...event, worker: this.workerId } : event);
          if (signal.aborted) break;
        }
      } catch (error) {
        if (!signal.aborted) {
          logger.error({ err: error }, "backend threw instead of yielding an error event");
          writer.push({ type: "error", error: asGatewayError(error).toPayload() });
          sawError = true;
        }
      }
      const reason = running.reason;
      if (reason === "cancelled" || reason === "not-wanted" || writer.stopped) {
        outcome = reason ?? writer.stopped ?? "failed";
        return;
      }
      if (reason === "shutdown" && !sawError && (await writer.stepAside())) {
        // Nothing of this attempt reached the client: another worker can still give the whole answer.
        if (await this.#handBack(bullJob, token, logger)) {
          outcome = "handed-back";
          throw new WaitingError();
        }
        writer.resume();
      }
      if ((reason === "shutdown" || reason === "deadline") && !sawError) writer.push(abortedEvent(reason));
      writer.seal();
      writer.begin(attempt);
      await writer.end();
      outcome = reason ?? (sawError ? "error" : "completed");
    } finally {
      clearImmediate(beginTimer);
      clearTimeout(deadlineTimer);
      slot.running--;
      jobs.delete(running);
      if (jobs.size === 0) this.#running.delete(job.id);
      // One line per job at info, as the gateway logs one per request: a request id found in the
      // gateway's log is found in the log of the worker that ran it.
      logger.info({ attempt, outcome, durationMs: Math.round(performance.now() - startedAt) }, "job finished");
    }
  }

  /** Puts a job this worker holds back at the head of its queue; false if BullMQ refused (the lock was lost). */
  async #handBack(bullJob: BullJob, token: string | undefined, logger: Logger): Promise<boolean> {
    try {
      await bullJob.moveToWait(token);
      logger.info({}, "shutting down: job handed back to its queue before any output");
      return true;
    } catch (error) {
      logger.warn({ err: error }, "could not hand the job back to its queue; ending it with an error");
      return false;
    }
  }

  #abort(jobId: string, reason: AbortReason): void {
    for (const job of this.#running.get(jobId) ?? []) this.#abortJob(job, reason);
  }

  #abortJob(job: RunningJob, reason: AbortReason): void {
    if (job.controller.signal.aborted) return;
    job.reason = reason;
    job.controller.abort(new Error(`job aborted: ${reason}`));
  }
}

function abortedEvent(reason: "shutdown" | "deadline"): JobEvent {
  const error: ErrorPayload =
    reason === "shutdown"
      ? new GatewayError("The worker serving this request is shutting down.", {
          status: 503,
          type: "service_unavailable_error",
          code: "worker_shutting_down",
          retryAfterSeconds: 1,
        }).toPayload()
      : new GatewayError("The request took longer than its deadline.", { status: 504, type: "timeout_error", code: "timeout" }).toPayload();
  return { type: "error", error };
}
