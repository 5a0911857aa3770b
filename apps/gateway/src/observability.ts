/**
 * The gateway's metrics hooks: requests in flight, requests by route
 * template, model and status with their duration, rejections by reason, and
 * per job the time to first token, time per output token and tokens in and
 * out (see `docs/metrics.md`).
 *
 * A request is counted when its response closes: ended responses with their
 * status, responses the client abandoned as 499. The 'close' event fires in
 * both cases, so nothing is counted twice and in-flight never leaks.
 *
 * Every time is read on Fastify's clock (`reply.elapsedTime`): Fastify stamps
 * each request's arrival and its response's end, since the gateway always
 * has a logger, so the hooks read the clock only where a job's output
 * arrives and where it ends.
 */
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { JobObserver, RequestObservation as MetricsRequestObservation, SwitchboardMetrics } from "@switchboard/metrics";
import type { Job } from "@switchboard/protocol";
import type { GatewayCatalog } from "./openai-routes.js";

/** Status recorded for a response the client abandoned before it ended (nginx's convention). */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * What the hooks keep per request: the metrics' observation of it and its
 * job, on the reply's clock (`reply.elapsedTime`).
 */
export type RequestObservation = MetricsRequestObservation<FastifyReply>;

/** Where a response carries its request's observation, so one shared `close` listener serves every request. */
const OBSERVATION = Symbol("switchboard.observation");

type ObservedResponse = ServerResponse & { [OBSERVATION]?: RequestObservation };

declare module "fastify" {
  interface FastifyRequest {
    /** Metrics state of the request; null when metrics are off. */
    observation: RequestObservation | null;
  }
}

export interface ObservabilityOptions {
  metrics: SwitchboardMetrics;
  catalog: GatewayCatalog;
  /** Record request and job metrics (default true); off, `/metrics` still serves process metrics. */
  enabled?: boolean;
}

/** Starts watching one job's events for metrics (given to the JobRunner). */
export type ObserveJob = (request: FastifyRequest, job: Job) => JobObserver | undefined;

/**
 * Installs the hooks. Call before any other onRequest hook, so requests
 * refused there (401, shutting down) are counted too. Returns the job
 * observer for the JobRunner, or undefined when metrics are off.
 */
export function installObservability(app: FastifyInstance, options: ObservabilityOptions): ObserveJob | undefined {
  app.decorateRequest("observation", null);
  if (options.enabled === false) return undefined;
  const { catalog } = options;
  const gateway = options.metrics.gateway;

  /** The model a request named: its job's, else the body's `model` resolved through the catalog. */
  const modelOf = (request: FastifyRequest, observation: RequestObservation): string | undefined => {
    if (observation.model !== undefined) return observation.model;
    const named = (request.body as { model?: unknown } | undefined)?.model;
    if (typeof named !== "string") return undefined;
    return catalog.resolve(named)?.id ?? named;
  };

  // One listener for every response (no closure per request); it fires once, after the
  // response ended or the client went away; the response is not reused.
  function responseClosed(this: ObservedResponse): void {
    const observation = this[OBSERVATION];
    if (observation === undefined) return;
    observation.onClose?.();
    const reply = observation.clock;
    const request = reply.request;
    // Fastify's: from the request's arrival to the response's end (for a client that left, now).
    gateway.recordRequest(
      // Undefined when no route matched (Fastify's `is404` reads the same field): one getter, not two.
      request.routeOptions.url,
      request.method,
      this.writableEnded ? this.statusCode : CLIENT_CLOSED_REQUEST,
      modelOf(request, observation),
      reply.elapsedTime / 1000,
    );
  }

  app.addHook("onRequest", (request, reply, done) => {
    const observation = gateway.startRequest(reply);
    request.observation = observation;
    const response = reply.raw as ObservedResponse;
    response[OBSERVATION] = observation;
    response.on("close", responseClosed);
    done();
  });

  return (request, job) => {
    const observation = request.observation;
    if (!observation) return undefined;
    observation.model = job.model;
    return gateway.startJob(job, observation);
  };
}
