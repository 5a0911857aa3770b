export { buildGateway, type GatewayOptions } from "./gateway.js";
export type { GatewayCatalog } from "./openai-routes.js";
export type { Readiness } from "./operations-routes.js";
export type { ConsoleRunRecord, RecentRunsProvider } from "./console-routes.js";
export { CLIENT_CLOSED_REQUEST } from "./observability.js";
export { REQUEST_ID_HEADER, isAcceptableRequestId } from "./request-id.js";
export { ArtifactLinks, type GatewayArtifacts } from "./artifact-links.js";
export { queueForCatalog } from "./fleet-routing.js";
export { registerRouterRoutes, isRouterName, orchestrationObject, type RouterEndpoint, type RunReader } from "./router-routes.js";
