/** Short lock, stall and heartbeat timings so failure paths finish in seconds. */
import type { BullmqDispatcherOptions, ServeBackendOptions } from "../src/index.js";

export const workerTimings = {
  lockDuration: 1500,
  stalledInterval: 1000,
  maxStalledCount: 1,
  heartbeatIntervalMs: 200,
  heartbeatTtlMs: 800,
  drainTimeoutMs: 2000,
  stuckAfterMs: 3000,
  retryDelayMs: 200,
  reconnectMaxDelayMs: 200,
  drainDelay: 1,
  commandTimeoutMs: 1000,
} satisfies Partial<ServeBackendOptions>;

export const dispatcherTimings = {
  livenessIntervalMs: 200,
  connectionLossGraceMs: 1000,
  rerunTimeoutMs: 8000,
  workerlessGraceMs: 8000,
  unavailableRetryAfterSeconds: 2,
  reconnectMaxDelayMs: 200,
  commandTimeoutMs: 1000,
} satisfies Partial<BullmqDispatcherOptions>;
