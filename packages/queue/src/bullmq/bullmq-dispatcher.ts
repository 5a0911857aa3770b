/**
 * Fleet mode, gateway side: every job becomes a BullMQ job on Redis, and its
 * events come back through this gateway's inbox stream.
 *
 * Per request: one admission script (live workers, queue bound, "still
 * wanted" key), one BullMQ add, then events as the shared inbox reader routes
 * them. No per-request Queue, QueueEvents or listeners on shared emitters.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import {
  GatewayError,
  modelUnavailable,
  rateLimited,
  silentLogger,
  type ErrorPayload,
  type Job,
  type JobEvent,
  type JobSignal,
  type Logger,
  type ModelState,
} from "@switchboard/protocol";
import type { Dispatcher, SubmitOptions } from "../dispatcher.js";
import type { QueueDepthSample, QueueJobOutcome, QueueMetrics } from "../queue-metrics.js";
import { DEFAULT_PREFIX, FleetKeys, bullJobId, defaultQueueFor } from "./names.js";
import { acceptedHeldMs, PendingJob, transportErrors } from "./pending-job.js";
import { admitScript, createRedis, liveCountScript, queueDepthScript, reconnectStrategy, type RedisConnection } from "./redis.js";
import { decodeBatch, type JobEnvelope } from "./wire.js";
import type { WorkerStatus } from "./worker-runtime.js";

export interface BullmqDispatcherOptions {
  /** Redis URL or ioredis options. The dispatcher may be built while Redis is down. */
  connection: RedisConnection;
  /** BullMQ key prefix shared with the workers. Default `switchboard`. */
  prefix?: string;
  /** Queue of a job. Default: `llama.<model>` (see `names.ts`). */
  queueFor?: (job: Job) => string;
  /** Jobs allowed to wait in a queue before `submit` answers 429. Default 64. */
  maxWaiting?: number | ((job: Job) => number);
  /** Deadline for jobs without `deadlineAt`, in ms. Default 10 minutes. */
  defaultTimeoutMs?: number;
  /** How long Redis may be unreachable before open streams end with an error. Default 2000 ms. */
  connectionLossGraceMs?: number;
  /** How often running jobs' workers and waiting jobs' queues are checked for life. Default 1000 ms. */
  livenessIntervalMs?: number;
  /**
   * How long a job whose worker died before any output waits for BullMQ to
   * re-run it elsewhere (lock expiry + stalled check). Default 45000 ms.
   */
  rerunTimeoutMs?: number;
  /**
   * How long jobs already queued wait while their queue has no live worker
   * (its only worker restarting, a rolling deploy) before they end with 503
   * `model_unavailable`. New jobs for such a queue are refused at once.
   * Default 15000 ms.
   */
  workerlessGraceMs?: number;
  /** Retry-After for "no live worker" and "Redis unreachable". Default 5 s. */
  unavailableRetryAfterSeconds?: number;
  /** Redis command timeout, in ms. Default 5000. */
  commandTimeoutMs?: number;
  /** Longest reconnect back-off, in ms. Default 1000. */
  reconnectMaxDelayMs?: number;
  /** Inbox TTL, refreshed while the gateway lives; workers stop writing when it is gone. Default 60000 ms. */
  inboxTtlMs?: number;
  /** Approximate bound on the inbox length (workers trim on append). Default 10000. */
  inboxMaxLength?: number;
  /** Service time assumed before any job has been observed, in ms. Default 2000. */
  initialServiceTimeMs?: number;
  logger?: Logger;
  /**
   * Queue metrics: depth (read from BullMQ at scrape time), wait (submitted →
   * a worker's `accepted`) and run time, outcomes. Re-runs and stalls are
   * counted by the workers, which see them (`ServeBackendOptions.metrics`).
   */
  metrics?: QueueMetrics;
  /** Queues whose depth is reported from the first scrape; any other queue once a job has gone to it. */
  queues?: readonly string[];
}

const READ_BLOCK_MS = 1000;
/** Error codes of the worker side of the transport (a draining worker's cancel): the job `failed`, not ended in-band. */
const WORKER_TRANSPORT_FAILURES = new Set(["worker_shutting_down"]);
/** Weight of the newest sample in the service-time moving average. */
const SERVICE_TIME_ALPHA = 0.2;

interface ServiceTime {
  averageMs: number;
}

interface PendingCancel {
  jobId: string;
  queueName: string;
  /** Whether the job reached the queue (else only its key is dropped). */
  added: boolean;
  tries?: number;
}

/** Cancels kept for retry while Redis is away; past it, the keys' TTLs and deadlines clean up. */
const MAX_CANCEL_BACKLOG = 10_000;

export class BullmqDispatcher implements Dispatcher {
  /** This gateway instance; names its inbox. */
  readonly gatewayId = randomUUID();
  readonly keys: FleetKeys;
  readonly #options: Required<Omit<BullmqDispatcherOptions, "connection" | "prefix" | "queueFor" | "maxWaiting" | "logger" | "metrics" | "queues">>;
  readonly #metrics: QueueMetrics | undefined;
  readonly #unwatch: (() => void) | undefined;
  readonly #queueFor: (job: Job) => string;
  readonly #maxWaiting: (job: Job) => number;
  readonly #logger: Logger;
  readonly #inbox: string;
  /** Commands: admission, BullMQ adds (shared by every Queue), cancels. Fails fast when Redis is gone. */
  readonly #command: Redis;
  /** The one blocking XREAD on the inbox. */
  readonly #reader: Redis;
  readonly #queues = new Map<string, Queue>();
  readonly #pending = new Map<string, PendingJob>();
  readonly #serviceTimes = new Map<string, ServiceTime>();
  readonly #cancelBacklog = new Set<PendingCancel>();
  #lastId = "0-0";
  #inboxReady = false;
  #inboxCreated = false;
  #ensuringInbox: Promise<void> | undefined;
  #disconnectedSince: number | undefined;
  #lossTimer: NodeJS.Timeout | undefined;
  #maintenance: NodeJS.Timeout;
  #lastInboxRefresh = 0;
  /** Since when each queue with waiting jobs has had no live worker. */
  readonly #workerlessSince = new Map<string, number>();
  #closed = false;
  #reading: Promise<void>;
  #modelStatesCache: { at: number; states: ModelState[] } | undefined;

  constructor(options: BullmqDispatcherOptions) {
    this.keys = new FleetKeys(options.prefix ?? DEFAULT_PREFIX);
    this.#options = {
      defaultTimeoutMs: options.defaultTimeoutMs ?? 600_000,
      connectionLossGraceMs: options.connectionLossGraceMs ?? 2000,
      livenessIntervalMs: options.livenessIntervalMs ?? 1000,
      rerunTimeoutMs: options.rerunTimeoutMs ?? 45_000,
      workerlessGraceMs: options.workerlessGraceMs ?? 15_000,
      unavailableRetryAfterSeconds: options.unavailableRetryAfterSeconds ?? 5,
      commandTimeoutMs: options.commandTimeoutMs ?? 5000,
      reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? 1000,
      inboxTtlMs: options.inboxTtlMs ?? 60_000,
      inboxMaxLength: options.inboxMaxLength ?? 10_000,
      initialServiceTimeMs: options.initialServiceTimeMs ?? 2000,
    };
    this.#queueFor = options.queueFor ?? defaultQueueFor;
    const maxWaiting = options.maxWaiting ?? 64;
    this.#maxWaiting = typeof maxWaiting === "function" ? maxWaiting : () => maxWaiting;
    this.#logger = (options.logger ?? silentLogger).child({ component: "bullmq-dispatcher" });
    this.#inbox = this.keys.inbox(this.gatewayId);

    const retryStrategy = reconnectStrategy(this.#options.reconnectMaxDelayMs);
    this.#command = createRedis(options.connection, {
      // Fail fast while Redis is away: a request gets 503 now rather than hanging in an offline queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.#options.commandTimeoutMs,
      retryStrategy,
      connectionName: `switchboard-gateway-${this.gatewayId}`,
    });
    this.#reader = createRedis(options.connection, {
      enableOfflineQueue: false,
      // A dropped connection rejects the pending XREAD instead of replaying it after reconnect.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy,
      connectionName: `switchboard-gateway-inbox-${this.gatewayId}`,
    });
    for (const client of [this.#command, this.#reader]) {
      client.on("error", (error: Error) => this.#logger.debug({ err: error }, "redis connection error"));
      client.on("close", () => this.#onDisconnected());
      client.on("ready", () => this.#onReady());
    }
    this.#metrics = options.metrics;
    for (const name of options.queues ?? []) this.#queue(name);
    this.#unwatch = options.metrics?.watchDepth(() => this.#depthSamples());
    this.#disconnectedSince = Date.now();
    this.#maintenance = setInterval(() => void this.#maintain(), this.#options.livenessIntervalMs);
    this.#maintenance.unref();
    this.#reading = this.#readLoop();
  }

  submit(job: Job, options: SubmitOptions = {}): AsyncIterable<JobEvent> {
    const events = this.#submit(job, options);
    return this.#metrics ? this.#measured(this.#queueFor(job), events, options.signal) : events;
  }

  async *#submit(job: Job, options: SubmitOptions): AsyncGenerator<JobEvent> {
    const signal = options.signal;
    if (signal?.aborted) return;
    if (!this.#connected()) {
      yield this.#unavailableEvent();
      return;
    }
    const queueName = this.#queueFor(job);
    const pending = new PendingJob(job.id, job.model, queueName);
    const stateKey = this.keys.jobState(job.id);
    const now = Date.now();
    const deadlineAt = job.deadlineAt ?? now + this.#options.defaultTimeoutMs;
    this.#pending.set(job.id, pending);
    let added = false;
    const onAbort = () => pending.abandon();
    let deadlineTimer: NodeJS.Timeout | undefined;
    try {
      const queue = this.#queue(queueName);
      const bullId = bullJobId(job.id);
      const admission = admitScript.run(
        this.#command,
        [this.keys.liveWorkers(queueName), queue.keys.wait!, queue.keys.prioritized!, stateKey],
        [this.#maxWaiting(job), Math.max(1000, deadlineAt - now + 60_000)],
      );
      // Added at the same time as the admission check (one round trip instead of two). A refused
      // job is removed again; a worker that takes it first finds no "still wanted" key and drops it.
      const envelope: JobEnvelope = { v: 1, job, inbox: this.#inbox, inboxMaxLength: this.#options.inboxMaxLength, deadlineAt };
      const adding = queue.add(job.kind, envelope, { jobId: bullId, removeOnComplete: true, removeOnFail: true, attempts: 1 });
      const dropJob = () => void adding.then(() => queue.remove(bullId)).catch(() => undefined);
      let admitted: [number, number, number];
      try {
        admitted = (await admission) as [number, number, number];
      } catch (error) {
        dropJob();
        throw error;
      }
      const [code, concurrency, depth] = admitted;
      if (code !== 2) {
        dropJob();
        yield {
          type: "error",
          error:
            code === 0
              ? modelUnavailable(job.model, `No worker is serving model '${job.model}' right now.`, this.#options.unavailableRetryAfterSeconds).toPayload()
              : this.#queueFull(job, queueName, depth, concurrency),
        };
        return;
      }
      await adding;
      added = true;
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) return;
      deadlineTimer = setTimeout(() => pending.fail(timeoutError(), false), Math.max(0, deadlineAt - Date.now()));
      deadlineTimer.unref();
      yield* pending.events();
    } catch (error) {
      this.#onCommandFailure(error);
      if (pending.ended) return;
      // A Redis error here is the transport failing, not the job: 503 with Retry-After.
      this.#logger.warn({ err: error, jobId: job.id }, "submit failed on Redis");
      yield this.#unavailableEvent();
    } finally {
      clearTimeout(deadlineTimer);
      signal?.removeEventListener("abort", onAbort);
      this.#pending.delete(job.id);
      this.#finish(pending, stateKey, added);
    }
  }

  async modelStates(): Promise<ModelState[]> {
    const cached = this.#modelStatesCache;
    if (cached && Date.now() - cached.at < 1000) return cached.states;
    if (!this.#connected()) return cached?.states ?? [];
    try {
      const workerIds = await this.#command.zrange(this.keys.workers(), 0, "-1");
      const statuses = workerIds.length === 0 ? [] : await this.#command.mget(workerIds.map((id) => this.keys.workerStatus(id)));
      const states = mergeModelStates(
        statuses.flatMap((text) => {
          if (!text) return [];
          try {
            return [JSON.parse(text) as WorkerStatus];
          } catch {
            return [];
          }
        }),
      );
      this.#modelStatesCache = { at: Date.now(), states };
      return states;
    } catch (error) {
      this.#logger.debug({ err: error }, "modelStates failed");
      return cached?.states ?? [];
    }
  }

  async ready(): Promise<boolean> {
    return this.#connected();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#maintenance);
    clearTimeout(this.#lossTimer);
    this.#unwatch?.();
    const open = [...this.#pending.values()];
    for (const pending of open) pending.fail(unavailable("The gateway is shutting down.", this.#options.unavailableRetryAfterSeconds));
    if (this.#command.status === "ready") {
      // Nobody will read these jobs' events: unwant them and tell running workers. Workers still
      // writing for this gateway also see its inbox gone and stop.
      const pipeline = this.#command.pipeline();
      for (const pending of open) pipeline.del(this.keys.jobState(pending.jobId)).publish(this.keys.cancelChannel(), pending.jobId);
      await pipeline.del(this.#inbox).exec().catch(() => undefined);
    }
    await Promise.allSettled([...this.#queues.values()].map((queue) => queue.close()));
    this.#reader.disconnect();
    await this.#reading.catch(() => undefined);
    this.#command.disconnect();
  }

  /** Number of requests in flight, for metrics and tests. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Counts a job as waiting until its first event (a worker's `accepted`) and
   * active until its last, as the in-process transport does. An `error` first
   * is a rejection (refused, or failed before it ran); a later error is
   * in-band (`completed`) unless the transport made it (`failed`).
   */
  async *#measured(queue: string, events: AsyncGenerator<JobEvent>, signal: JobSignal | undefined): AsyncGenerator<JobEvent> {
    const metrics = this.#metrics!;
    const submittedAt = performance.now();
    let startedAt: number | undefined;
    let first = true;
    // Stays `cancelled` when the reader stops early (the client went away).
    let outcome: QueueJobOutcome = "cancelled";
    try {
      for await (const event of events) {
        if (first) {
          first = false;
          if (event.type === "error") outcome = "rejected";
          else {
            // A worker may hold its `accepted` a moment for the first output: the job started then.
            startedAt = Math.max(submittedAt, performance.now() - (acceptedHeldMs.get(event) ?? 0));
            metrics.jobStarted(queue, (startedAt - submittedAt) / 1000);
          }
        } else if (event.type === "error" && (transportErrors.has(event) || WORKER_TRANSPORT_FAILURES.has(event.error.code ?? ""))) {
          outcome = "failed";
        }
        yield event;
      }
      // A client that disconnects ends the stream quietly: still a cancellation.
      if (outcome === "cancelled" && !signal?.aborted) outcome = first ? "failed" : "completed";
    } finally {
      metrics.jobFinished(queue, outcome, startedAt === undefined ? 0 : (performance.now() - startedAt) / 1000);
    }
  }

  /**
   * Depth of every queue this gateway knows, read from BullMQ's keys at scrape
   * time in one round trip. A paused queue's waiting jobs count as `paused`.
   */
  async #depthSamples(): Promise<QueueDepthSample[]> {
    if (!this.#connected() || this.#queues.size === 0) return [];
    const queues = [...this.#queues];
    const keys = queues.flatMap(([, queue]) => [queue.keys.wait!, queue.keys.active!, queue.keys.delayed!, queue.keys.prioritized!, queue.keys.meta!]);
    const counts = ((await queueDepthScript.run(this.#command, keys, [])) as number[]).map(Number);
    return queues.flatMap(([name], index) => {
      const [waiting = 0, active = 0, delayed = 0, prioritized = 0, paused = 0] = counts.slice(index * 5, index * 5 + 5);
      return [
        { queue: name, state: "waiting", count: paused ? 0 : waiting },
        { queue: name, state: "active", count: active },
        { queue: name, state: "delayed", count: delayed },
        { queue: name, state: "prioritized", count: prioritized },
        { queue: name, state: "paused", count: paused ? waiting : 0 },
      ];
    });
  }

  #queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (!queue) {
      queue = new Queue(name, {
        connection: this.#command,
        prefix: this.keys.prefix,
        // BullMQ's own event stream is not how events travel here; keep it short.
        streams: { events: { maxLen: 1000 } },
      });
      queue.on("error", (error: Error) => this.#logger.debug({ err: error, queue: name }, "queue error"));
      this.#queues.set(name, queue);
    }
    return queue;
  }

  #connected(): boolean {
    return !this.#closed && this.#command.status === "ready" && this.#reader.status === "ready" && this.#inboxReady;
  }

  #unavailableEvent(): JobEvent {
    const event: JobEvent = { type: "error", error: unavailable("The job queue is unreachable.", this.#options.unavailableRetryAfterSeconds) };
    transportErrors.add(event);
    return event;
  }

  #queueFull(job: Job, queueName: string, depth: number, concurrency: number): ErrorPayload {
    const retryAfter = this.#retryAfterSeconds(queueName, depth, concurrency);
    return rateLimited(`Too many requests are waiting for model '${job.model}'; retry in ${retryAfter} s.`, retryAfter).toPayload();
  }

  #retryAfterSeconds(queueName: string, depth: number, concurrency: number): number {
    const averageMs = this.#serviceTimes.get(queueName)?.averageMs ?? this.#options.initialServiceTimeMs;
    const seconds = Math.ceil((depth * averageMs) / Math.max(1, concurrency) / 1000);
    return Math.min(60, Math.max(1, seconds));
  }

  #recordServiceTime(pending: PendingJob): void {
    if (pending.acceptedAt === undefined) return;
    const sample = Date.now() - pending.acceptedAt;
    const current = this.#serviceTimes.get(pending.queueName);
    if (current) current.averageMs += SERVICE_TIME_ALPHA * (sample - current.averageMs);
    else this.#serviceTimes.set(pending.queueName, { averageMs: sample });
  }

  /** After the request ends: drop the "still wanted" key; if the job may still run somewhere, cancel it. */
  #finish(pending: PendingJob, stateKey: string, added: boolean): void {
    if (pending.completed) {
      this.#recordServiceTime(pending);
      // The worker drops the key with its last entry once it owned the output.
      if (pending.owner === undefined) this.#command.del(stateKey).catch(() => undefined);
      return;
    }
    this.#cancel({ jobId: pending.jobId, queueName: pending.queueName, added });
  }

  /**
   * Withdraws a job nobody will read: without its key a worker that takes it
   * discards it; the remove catches it while it waits; the broadcast reaches a
   * worker already running it. Cancels that fail (Redis away) are retried
   * once Redis is back, within a bound.
   */
  #cancel(cancel: PendingCancel): void {
    const command = this.#command;
    if (command.status !== "ready") {
      if (this.#cancelBacklog.size < MAX_CANCEL_BACKLOG) this.#cancelBacklog.add(cancel);
      return;
    }
    void (async () => {
      try {
        await command.del(this.keys.jobState(cancel.jobId));
        if (!cancel.added) return;
        await this.#queue(cancel.queueName).remove(bullJobId(cancel.jobId));
        await command.publish(this.keys.cancelChannel(), cancel.jobId);
      } catch (error) {
        this.#logger.debug({ err: error, jobId: cancel.jobId }, "cancel failed; will retry");
        cancel.tries = (cancel.tries ?? 0) + 1;
        if (cancel.tries < 5 && this.#cancelBacklog.size < MAX_CANCEL_BACKLOG) this.#cancelBacklog.add(cancel);
      }
    })();
  }

  #retryCancels(): void {
    const backlog = [...this.#cancelBacklog];
    this.#cancelBacklog.clear();
    for (const cancel of backlog) this.#cancel(cancel);
  }

  async #readLoop(): Promise<void> {
    while (!this.#closed) {
      if (this.#reader.status !== "ready" || !this.#inboxReady) {
        await sleep(50);
        continue;
      }
      // A blocking read that outlives its own timeout is stuck on a half-dead socket: reset it.
      const watchdog = setTimeout(() => this.#reader.disconnect(true), READ_BLOCK_MS + 2000);
      try {
        const reply = (await this.#reader.xread("COUNT", 1000, "BLOCK", READ_BLOCK_MS, "STREAMS", this.#inbox, this.#lastId)) as
          | [string, [string, string[]][]][]
          | null;
        const now = Date.now();
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            this.#lastId = id;
            this.#route(fields, now);
          }
        }
      } catch (error) {
        if (this.#closed) break;
        this.#logger.debug({ err: error }, "inbox read failed");
        await sleep(50);
      } finally {
        clearTimeout(watchdog);
      }
    }
  }

  #route(fields: string[], now: number): void {
    let batch;
    try {
      batch = decodeBatch(fields);
    } catch (error) {
      this.#logger.warn({ err: error }, "undecodable inbox entry");
      return;
    }
    if (!batch) return;
    const pending = this.#pending.get(batch.jobId);
    if (!pending) return;
    const lost = pending.accept(batch, now);
    if (lost) pending.fail(lost);
  }

  #onDisconnected(): void {
    if (this.#closed || this.#disconnectedSince !== undefined) return;
    this.#disconnectedSince = Date.now();
    this.#inboxReady = false;
    this.#logger.warn({}, "lost the Redis connection");
    clearTimeout(this.#lossTimer);
    this.#lossTimer = setTimeout(() => {
      if (this.#disconnectedSince === undefined) return;
      this.#failAll(unavailable("Lost the connection to the job queue.", this.#options.unavailableRetryAfterSeconds));
    }, this.#options.connectionLossGraceMs);
    this.#lossTimer.unref();
  }

  #onReady(): void {
    if (this.#closed || this.#command.status !== "ready" || this.#reader.status !== "ready") return;
    this.#ensuringInbox ??= this.#ensureInbox().finally(() => (this.#ensuringInbox = undefined));
  }

  /** Makes sure the inbox exists; if it vanished while we were away, Redis lost data and open jobs with it. */
  async #ensureInbox(): Promise<void> {
    try {
      const existed = await this.#command.pexpire(this.#inbox, this.#options.inboxTtlMs);
      if (existed === 0) {
        const id = await this.#command.xadd(this.#inbox, "*", "hello", this.gatewayId);
        await this.#command.pexpire(this.#inbox, this.#options.inboxTtlMs);
        if (this.#inboxCreated) {
          this.#logger.warn({}, "the inbox vanished from Redis (restart without persistence?); failing open requests");
          this.#failAll(unavailable("The job queue lost this request's state.", this.#options.unavailableRetryAfterSeconds));
        }
        this.#lastId = id ?? "0-0";
        this.#inboxCreated = true;
      }
      this.#lastInboxRefresh = Date.now();
      this.#inboxReady = true;
      if (this.#disconnectedSince !== undefined) {
        this.#logger.info({ downMs: Date.now() - this.#disconnectedSince }, "Redis connection ready");
        this.#disconnectedSince = undefined;
        clearTimeout(this.#lossTimer);
      }
    } catch (error) {
      this.#logger.debug({ err: error }, "could not prepare the inbox; retrying");
      setTimeout(() => this.#onReady(), 200).unref();
    }
  }

  #failAll(error: ErrorPayload): void {
    for (const pending of this.#pending.values()) pending.fail(error);
  }

  /**
   * A command that timed out on a connection that still looks ready means a
   * half-open socket (a partition, a vanished host): drop it and reconnect, so
   * `ready()` turns false and requests get 503 instead of waiting on it.
   */
  #onCommandFailure(error: unknown): void {
    if (this.#closed || this.#command.status !== "ready") return;
    if (error instanceof Error && /timed out/i.test(error.message)) {
      this.#logger.warn({}, "Redis stopped answering; reconnecting");
      this.#command.disconnect(true);
    }
  }

  /** Periodic: a ping (finds half-open connections), inbox TTL and trimming, and the liveness of what open requests wait for. */
  async #maintain(): Promise<void> {
    if (!this.#connected()) return;
    const now = Date.now();
    try {
      await this.#command.ping();
      if (now - this.#lastInboxRefresh > this.#options.inboxTtlMs / 4) {
        this.#lastInboxRefresh = now;
        const pipeline = this.#command.pipeline().pexpire(this.#inbox, this.#options.inboxTtlMs).xtrim(this.#inbox, "MINID", this.#lastId);
        const results = await pipeline.exec();
        if (results?.[0]?.[1] === 0) this.#onReady();
      }
      if (this.#cancelBacklog.size > 0) this.#retryCancels();
      if (this.#pending.size > 0) await this.#checkLiveness(now);
    } catch (error) {
      this.#onCommandFailure(error);
      this.#logger.debug({ err: error }, "maintenance failed");
    }
  }

  async #checkLiveness(now: number): Promise<void> {
    const interval = this.#options.livenessIntervalMs;
    const byWorker = new Map<string, PendingJob[]>();
    const byQueue = new Map<string, PendingJob[]>();
    for (const pending of this.#pending.values()) {
      if (pending.ended) continue;
      if (pending.phase === "running" && pending.worker && now - pending.lastActivity >= interval) {
        const list = byWorker.get(pending.worker) ?? [];
        list.push(pending);
        byWorker.set(pending.worker, list);
      } else if (pending.phase !== "running") {
        if (pending.phase === "awaiting-rerun" && now - (pending.awaitingSince ?? now) > this.#options.rerunTimeoutMs) {
          pending.fail(workerLost("The worker running this request stopped and no other worker took it over."));
          continue;
        }
        const list = byQueue.get(pending.queueName) ?? [];
        list.push(pending);
        byQueue.set(pending.queueName, list);
      }
    }
    if (byWorker.size === 0 && byQueue.size === 0) return;
    const workers = [...byWorker.keys()];
    const queues = [...byQueue.keys()];
    const pipeline = this.#command.pipeline();
    for (const worker of workers) pipeline.exists(this.keys.workerStatus(worker));
    const results = await pipeline.exec();
    const liveCounts = queues.length === 0 ? [] : ((await liveCountScript.run(this.#command, queues.map((queue) => this.keys.liveWorkers(queue)), [])) as number[]);
    workers.forEach((worker, index) => {
      if (results?.[index]?.[1] !== 0) return;
      for (const pending of byWorker.get(worker) ?? []) {
        if (pending.ended || pending.worker !== worker || pending.phase !== "running") continue;
        if (pending.outputDelivered) {
          this.#logger.warn({ jobId: pending.jobId, worker }, "worker died mid-generation; ending the stream");
          pending.fail(workerLost("The worker generating this response stopped; the response is incomplete."));
        } else {
          // Nothing reached the client yet: BullMQ will re-run the job on another worker once its lock expires.
          this.#logger.warn({ jobId: pending.jobId, worker }, "worker died before any output; waiting for a re-run");
          pending.phase = "awaiting-rerun";
          pending.awaitingSince = now;
        }
      }
    });
    // A queue's clock restarts whenever none of its jobs is waiting.
    for (const queue of this.#workerlessSince.keys()) if (!byQueue.has(queue)) this.#workerlessSince.delete(queue);
    queues.forEach((queue, index) => {
      if (Number(liveCounts[index] ?? 0) > 0) {
        this.#workerlessSince.delete(queue);
        return;
      }
      const since = this.#workerlessSince.get(queue) ?? now;
      this.#workerlessSince.set(queue, since);
      if (now - since < this.#options.workerlessGraceMs) return;
      for (const pending of byQueue.get(queue) ?? []) {
        pending.fail(modelUnavailable(pending.model, `No worker is serving model '${pending.model}' any more.`, this.#options.unavailableRetryAfterSeconds).toPayload());
      }
    });
  }
}

function unavailable(message: string, retryAfterSeconds: number): ErrorPayload {
  return new GatewayError(message, { status: 503, type: "service_unavailable_error", code: "queue_unavailable", retryAfterSeconds }).toPayload();
}

function timeoutError(): ErrorPayload {
  return new GatewayError("The request took longer than its deadline.", { status: 504, type: "timeout_error", code: "timeout" }).toPayload();
}

function workerLost(message: string): ErrorPayload {
  return new GatewayError(message, { status: 502, type: "server_error", code: "worker_lost" }).toPayload();
}

/** One state per model across workers: ready if any worker has it ready, else the most advanced load. */
export function mergeModelStates(statuses: WorkerStatus[]): ModelState[] {
  const rank = { ready: 3, loading: 2, downloading: 1, failed: 0 } as const;
  const merged = new Map<string, ModelState>();
  for (const status of statuses) {
    for (const state of status.models) {
      const current = merged.get(state.id);
      if (
        !current ||
        rank[state.state] > rank[current.state] ||
        (state.state === current.state && (state.progress ?? 0) > (current.progress ?? 0))
      ) {
        merged.set(state.id, state);
      }
    }
  }
  return [...merged.values()];
}
