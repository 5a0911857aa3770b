/**
 * Fleet mode: which queue a job goes to. Remote (Hugging Face) models share
 * one queue served by `worker-hf`; each local model has its own, served by
 * the `worker-llama` processes that loaded it.
 */
import { HF_QUEUE, llamaQueueName } from "@switchboard/queue";
import type { Job } from "@switchboard/protocol";
import type { GatewayCatalog } from "./openai-routes.js";

/** A `queueFor` for `BullmqDispatcher`: `hf` for remote models, `llama.<id>` for local ones. */
export function queueForCatalog(catalog: Pick<GatewayCatalog, "resolve">): (job: Job) => string {
  return (job) => (catalog.resolve(job.model)?.backend === "hf" ? HF_QUEUE : llamaQueueName(job.model));
}
