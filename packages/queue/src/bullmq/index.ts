export { BullmqDispatcher, mergeModelStates, type BullmqDispatcherOptions } from "./bullmq-dispatcher.js";
export { serveBackend, type BackendServer, type ServeBackendOptions, type ServedQueue, type WorkerStatus } from "./worker-runtime.js";
export { DEFAULT_PREFIX, FleetKeys, HF_QUEUE, ROUTER_QUEUE, bullJobId, defaultQueueFor, llamaQueueName } from "./names.js";
export type { RedisConnection } from "./redis.js";
