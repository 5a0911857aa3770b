/**
 * The live console: a static page at `/` (no build step; `console/` next to
 * `src/`) and the JSON it reads under `/v1/console/`. The page itself is
 * open, so a browser can load it without a key; its JSON routes need a key
 * when keys are configured, because run records hold prompts and outputs. The
 * page asks for the key and keeps it in `sessionStorage`.
 *
 * Router runs come from an injected {@link RecentRunsProvider} (the router's
 * run store); without one the console says runs are not connected.
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { ConsoleStatsWindow, type SwitchboardMetrics } from "@switchboard/metrics";
import type { Dispatcher } from "@switchboard/queue";
import type { GatewayCatalog } from "./openai-routes.js";

/**
 * The run record the console reads: the planner's `RunRecord` (`GET
 * /v1/orchestrations/{id}`). Every field but `id` may be missing; the page
 * draws what is there.
 */
export interface ConsoleRunRecord {
  id: string;
  requestId?: string;
  status?: string;
  createdAt?: number;
  finishedAt?: number;
  plan?: { id: number; task: string; dep?: number[]; args?: Record<string, unknown> }[];
  selections?: { taskId: number; model: string | null; reason?: string; backend?: string | null }[];
  tasks?: { id: number; task?: string; status?: string; model?: string | null; startedAt?: number; finishedAt?: number; error?: unknown }[];
  [field: string]: unknown;
}

/** Where the console finds router runs; the lead binds it to the router's run store. */
export interface RecentRunsProvider {
  /** The most recent runs, newest first, at most `limit`. */
  list(limit: number): readonly ConsoleRunRecord[] | Promise<readonly ConsoleRunRecord[]>;
  /** One run by id; undefined when unknown (or expired). */
  get(id: string): ConsoleRunRecord | undefined | Promise<ConsoleRunRecord | undefined>;
}

export interface ConsoleRoutesOptions {
  metrics: SwitchboardMetrics;
  catalog: GatewayCatalog;
  dispatcher: Dispatcher;
  recentRuns?: RecentRunsProvider;
}

const CONSOLE_DIR = new URL("../console/", import.meta.url);

/** The page loads its own script and styles and talks only to this origin. */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const authenticated = { auth: true };
const hidden = { hide: true };

export function registerConsoleRoutes(app: FastifyInstance, options: ConsoleRoutesOptions): void {
  const { metrics, catalog, dispatcher, recentRuns } = options;
  const page = readFileSync(new URL("index.html", CONSOLE_DIR), "utf8");
  const script = readFileSync(new URL("console.js", CONSOLE_DIR), "utf8");
  const statsWindow = new ConsoleStatsWindow({ gateway: metrics.gateway, queue: metrics.queue });

  app.get("/", { schema: hidden }, async (_request, reply) => {
    reply.header("content-security-policy", CONTENT_SECURITY_POLICY).header("cache-control", "no-cache").type("text/html; charset=utf-8");
    return page;
  });
  app.get("/console/console.js", { schema: hidden }, async (_request, reply) => {
    reply.header("cache-control", "no-cache").type("text/javascript; charset=utf-8");
    return script;
  });

  app.get("/v1/console/stats", { config: authenticated, schema: hidden }, async () => {
    const [stats, states, transport] = await Promise.all([statsWindow.stats(), dispatcher.modelStates(), dispatcher.ready()]);
    const byId = new Map(states.map((state) => [state.id, state]));
    const models = catalog.list().map((model) => {
      const state = byId.get(model.id);
      return { id: model.id, backend: model.backend, state: state?.state ?? "unavailable", ...(state?.error ? { error: state.error } : {}), ...(state?.progress === undefined ? {} : { progress: state.progress }) };
    });
    // This request is in flight too; the console shows the others.
    const requests = { ...stats.requests, inFlight: Math.max(0, stats.requests.inFlight - 1) };
    return { ...stats, requests, transport: transport ? "ready" : "unavailable", models };
  });

  app.get<{ Querystring: { limit?: string } }>("/v1/console/runs", { config: authenticated, schema: hidden }, async (request) => {
    if (!recentRuns) return { object: "list", connected: false, data: [] };
    const limit = Math.min(100, Math.max(1, Number(request.query.limit) || 20));
    const runs = await recentRuns.list(limit);
    return {
      object: "list",
      connected: true,
      data: runs.slice(0, limit).map((run) => ({
        id: run.id,
        requestId: run.requestId,
        status: run.status,
        createdAt: run.createdAt,
        finishedAt: run.finishedAt,
        tasks: Array.isArray(run.plan) ? run.plan.length : 0,
      })),
    };
  });

  app.get<{ Params: { id: string } }>("/v1/console/runs/:id", { config: authenticated, schema: hidden }, async (request, reply) => {
    const run = recentRuns ? await recentRuns.get(request.params.id) : undefined;
    if (!run) {
      reply.code(404);
      return { error: { message: `No router run '${request.params.id}'.`, type: "invalid_request_error", param: "id", code: "run_not_found" } };
    }
    return run;
  });
}
