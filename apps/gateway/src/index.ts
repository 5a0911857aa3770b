export { buildGateway, type GatewayOptions } from "./gateway.js";
export type { GatewayCatalog } from "./openai-routes.js";
export type { Readiness } from "./operations-routes.js";
export { REQUEST_ID_HEADER, isAcceptableRequestId } from "./request-id.js";
