/**
 * Fleet mode: which queue a job goes to. Each local model has its own queue,
 * served by the `worker-llama` processes that loaded it; remote (Hugging
 * Face) models share one queue served by `worker-hf`; the router has its own.
 */
import { HF_QUEUE, llamaQueueName, ROUTER_QUEUE } from "@switchboard/queue";
import type { Job } from "@switchboard/protocol";
import type { GatewayCatalog } from "./openai-routes.js";

/** Catalog id of the router model; its jobs go to the router's queue. */
export const ROUTER_MODEL_ID = "router";

/** A `queueFor` for `BullmqDispatcher`: `router`, `hf` for remote models, `llama.<id>` for local ones. */
export function queueForCatalog(catalog: Pick<GatewayCatalog, "resolve">): (job: Job) => string {
  return (job) => {
    if (job.model === ROUTER_MODEL_ID) return ROUTER_QUEUE;
    return catalog.resolve(job.model)?.backend === "hf" ? HF_QUEUE : llamaQueueName(job.model);
  };
}
