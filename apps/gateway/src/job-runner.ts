/**
 * Runs one job through the dispatcher and turns its events into the HTTP
 * response: a JSON body, or a server-sent event stream.
 *
 * The first event decides the shape. An `error` first is a plain HTTP error
 * (with `Retry-After` when the error says so), for streaming requests too, so
 * a full queue or an over-long prompt never opens a stream. `accepted` first
 * opens the stream: headers go out then, not before. After that an error can
 * only be reported in band, as a `data: {"error": ...}` frame, and the stream
 * closes without `[DONE]`.
 *
 * A client that goes away (streaming or not) aborts the job's signal, so the
 * engine stops and frees its sequence. That is detected on the response's
 * `close` event, which fires when the connection closes; the request's own
 * `close` fires as soon as the body has been read, which is too early.
 */
import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Dispatcher } from "@switchboard/queue";
import {
  GatewayError,
  JobAbortController,
  SSE_DONE,
  SSE_HEADERS,
  asGatewayError,
  internalError,
  sseData,
  sseError,
  type Job,
  type JobEvent,
} from "@switchboard/protocol";
import type { JobObserver } from "@switchboard/metrics";
import { SseWriter } from "./sse-writer.js";

/** Turns a job's events into chunk JSON texts (see `ChatStreamEncoder`). */
export interface StreamEncoder {
  encode(event: JobEvent): string | undefined;
  end(): string | undefined;
}

/** Collects a job's events for a non-streamed response. */
export interface EventCollector {
  add(event: JobEvent): void;
}

export interface JobRunnerOptions {
  dispatcher: Dispatcher;
  /** Called once when a client disconnected before its response ended. */
  onClientGone?(request: FastifyRequest, reply: FastifyReply): void;
  /** Watches each job's events (metrics: tokens, time to first token); told once when the job ends. */
  observeJob?(request: FastifyRequest, job: Job): JobObserver | undefined;
}

/**
 * Shows `observer` the events it needs: all but the text deltas after its
 * first output, which carry nothing an observer counts and are most of a
 * job's events.
 */
function observe(observer: JobObserver | undefined, event: JobEvent): void {
  if (observer !== undefined && (event.type !== "text-delta" || !observer.outputSeen)) observer.see(event);
}

export class JobRunner {
  readonly #dispatcher: Dispatcher;
  readonly #onClientGone: JobRunnerOptions["onClientGone"];
  readonly #observeJob: JobRunnerOptions["observeJob"];

  constructor(options: JobRunnerOptions) {
    this.#dispatcher = options.dispatcher;
    this.#onClientGone = options.onClientGone;
    this.#observeJob = options.observeJob;
  }

  /**
   * Runs `job` and feeds every event to `collector`. Resolves true when the
   * job finished and the caller should send its response; false when the
   * client went away (the reply is then hijacked and must not be touched).
   * Throws a GatewayError for an error event, for the error handler to send.
   */
  async collect(request: FastifyRequest, reply: FastifyReply, job: Job, collector: EventCollector): Promise<boolean> {
    const run = this.#start(reply, job);
    try {
      for (;;) {
        const result = await run.events.next();
        if (run.controller.signal.aborted) return this.#clientGone(request, reply, run);
        if (result.done) {
          run.finished = true;
          break;
        }
        const event = result.value;
        observe(run.observer, event);
        if (event.type === "error") throw GatewayError.fromPayload(event.error);
        run.started = true;
        collector.add(event);
      }
      if (!run.started) throw internalError("The model ended the request without an answer.", "empty_response");
      return true;
    } finally {
      run.close();
    }
  }

  /**
   * Runs `job` and streams its events as server-sent events. Resolves when the
   * stream has ended (or the client went away); throws a GatewayError only
   * before the stream started, for the error handler to send as plain HTTP.
   */
  async stream(request: FastifyRequest, reply: FastifyReply, job: Job, encoder: StreamEncoder): Promise<void> {
    const run = this.#start(reply, job);
    const raw = reply.raw;
    try {
      const first = await run.events.next();
      if (run.controller.signal.aborted) {
        this.#clientGone(request, reply, run);
        return;
      }
      if (first.done) throw internalError("The model ended the request without an answer.", "empty_response");
      observe(run.observer, first.value);
      if (first.value.type === "error") throw GatewayError.fromPayload(first.value.error);

      run.started = true;
      reply.hijack();
      // Headers set on the reply so far (x-request-id, CORS) plus the stream's own.
      raw.writeHead(200, { ...reply.getHeaders(), ...SSE_HEADERS } as OutgoingHttpHeaders);
      const writer = new SseWriter(raw);
      let pending = writer.push(encoder.encode(first.value));
      for (;;) {
        if (pending !== undefined) await pending;
        let result: IteratorResult<JobEvent>;
        try {
          result = await run.events.next();
        } catch (error) {
          // A transport that throws instead of yielding an error event: still tell the client.
          request.log.error({ err: error }, "job event stream failed");
          writer.end(sseError(asGatewayError(error)));
          return;
        }
        if (run.controller.signal.aborted || raw.destroyed) {
          this.#clientGone(request, reply, run);
          return;
        }
        if (result.done) {
          run.finished = true;
          break;
        }
        const event = result.value;
        observe(run.observer, event);
        if (event.type === "error") {
          request.log.warn({ error: event.error }, "job failed after the stream started");
          writer.end(sseError(event.error));
          return;
        }
        pending = writer.push(encoder.encode(event));
      }
      if (pending !== undefined) await pending;
      const last = encoder.end();
      writer.end(last === undefined ? SSE_DONE : sseData(last) + SSE_DONE);
    } finally {
      run.close();
    }
  }

  #start(reply: FastifyReply, job: Job): JobRun {
    const controller = new JobAbortController();
    const raw = reply.raw;
    const onClose = () => {
      if (!raw.writableFinished) controller.abort();
    };
    // With metrics on, the response has a `close` listener already; it calls this one.
    const observation = reply.request.observation;
    const shared = observation !== null && observation.onClose === undefined;
    if (shared) observation.onClose = onClose;
    else raw.on("close", onClose);
    const events = this.#dispatcher.submit(job, { signal: controller.signal })[Symbol.asyncIterator]();
    const observer = this.#observeJob?.(reply.request, job);
    const run: JobRun = {
      controller,
      events,
      observer,
      started: false,
      finished: false,
      close() {
        if (shared) observation.onClose = undefined;
        else raw.off("close", onClose);
        observer?.end(run.finished);
        // Let the transport clean up a generator we stopped reading; never wait on it.
        events.return?.()?.catch(() => {});
      },
    };
    return run;
  }

  #clientGone(request: FastifyRequest, reply: FastifyReply, run: JobRun): false {
    if (!reply.sent) reply.hijack();
    request.log.info({ started: run.started }, "client went away; job aborted");
    this.#onClientGone?.(request, reply);
    return false;
  }
}

interface JobRun {
  controller: JobAbortController;
  events: AsyncIterator<JobEvent>;
  /** Whether an `accepted` event arrived. */
  started: boolean;
  observer: JobObserver | undefined;
  /** Whether the event stream ran to its end. */
  finished: boolean;
  close(): void;
}
