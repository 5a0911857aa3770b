/** Fleet mode's job routing lives with the fleet dispatcher; re-exported for the gateway's users. */
export { queueForCatalog } from "@switchboard/service";
