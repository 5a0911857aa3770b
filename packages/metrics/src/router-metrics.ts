/**
 * Router metrics: the HuggingGPT loop's stages, plans, tasks and runs.
 * {@link RouterRecorder} implements the planner's `OrchestrationObserver`
 * (structurally), so the composition passes it as `observer` to
 * `runOrchestration`.
 */
import type { Registry } from "prom-client";
import { PLAN_SIZE_BUCKETS, ROUTER_BUCKETS } from "./buckets.js";
import { FastCounter, FastHistogram } from "./fast-metrics.js";
import { KnownValues } from "./labels.js";
import type { LabelPolicy } from "./label-policy.js";

const STAGES = new KnownValues(["plan", "select", "execute", "respond"]);
const STAGE_OUTCOMES = new KnownValues(["ok", "error", "cancelled"]);
const PLAN_SOURCES = new KnownValues(["local", "remote", "client"]);
const TASK_STATUSES = new KnownValues(["pending", "running", "succeeded", "failed", "skipped", "cancelled"]);
const RUN_STATUSES = new KnownValues(["running", "planned", "completed", "cancelled", "failed"]);

export class RouterRecorder {
  readonly stageDuration: FastHistogram<"stage" | "outcome">;
  readonly planSize: FastHistogram<"source">;
  readonly replans: FastCounter<"source">;
  readonly planFallbacks: FastCounter<"source">;
  readonly tasks: FastCounter<"task" | "backend" | "status">;
  readonly taskDuration: FastHistogram<"task" | "backend" | "status">;
  readonly runDuration: FastHistogram<"status">;
  readonly runOverhead: FastHistogram<"status">;
  readonly #labels: LabelPolicy;

  constructor(registry: Registry, labels: LabelPolicy) {
    this.#labels = labels;
    const registers = [registry];
    this.stageDuration = new FastHistogram({
      name: "switchboard_router_stage_duration_seconds",
      help: "Duration of each router stage (plan, select, execute, respond) by outcome (ok, error, cancelled).",
      labelNames: ["stage", "outcome"],
      buckets: ROUTER_BUCKETS,
      registers,
    });
    this.planSize = new FastHistogram({
      name: "switchboard_router_plan_tasks",
      help: "Tasks in each plan, by where the plan came from (local planner, remote planner, client).",
      labelNames: ["source"],
      buckets: PLAN_SIZE_BUCKETS,
      registers,
    });
    this.replans = new FastCounter({
      name: "switchboard_router_replans_total",
      help: "Plans a remote planner had to write again after one failed validation.",
      labelNames: ["source"],
      registers,
    });
    this.planFallbacks = new FastCounter({
      name: "switchboard_router_plan_fallbacks_total",
      help: "Runs answered as plain chat because no valid plan could be made.",
      labelNames: ["source"],
      registers,
    });
    const taskLabels = ["task", "backend", "status"] as const;
    this.tasks = new FastCounter({
      name: "switchboard_router_tasks_total",
      help: "Plan tasks that ended, by task, backend of the chosen model and status (succeeded, failed, skipped, cancelled).",
      labelNames: taskLabels,
      registers,
    });
    this.taskDuration = new FastHistogram({
      name: "switchboard_router_task_duration_seconds",
      help: "Duration of each plan task, by task, backend and status.",
      labelNames: taskLabels,
      buckets: ROUTER_BUCKETS,
      registers,
    });
    this.runDuration = new FastHistogram({
      name: "switchboard_router_run_duration_seconds",
      help: "Duration of a whole router run, by final status.",
      labelNames: ["status"],
      buckets: ROUTER_BUCKETS,
      registers,
    });
    this.runOverhead = new FastHistogram({
      name: "switchboard_router_run_overhead_seconds",
      help: "The router loop's own time in a run: its duration minus the time a model call was in flight.",
      labelNames: ["status"],
      buckets: ROUTER_BUCKETS,
      registers,
    });
  }

  stageFinished(info: { stage: string; seconds: number; outcome: string }): void {
    this.stageDuration.series(STAGES.fold(info.stage), STAGE_OUTCOMES.fold(info.outcome)).observe(info.seconds);
  }

  planMade(info: { tasks: number; replans: number; source: string; fallback: boolean }): void {
    const source = PLAN_SOURCES.fold(info.source);
    this.planSize.series(source).observe(info.tasks);
    if (info.replans > 0) this.replans.series(source).inc(info.replans);
    if (info.fallback) this.planFallbacks.series(source).inc();
  }

  taskFinished(info: { task: string; backend: string; status: string; seconds: number }): void {
    const labels = [this.#labels.task(info.task), this.#labels.backend(info.backend), TASK_STATUSES.fold(info.status)] as const;
    this.tasks.series(...labels).inc();
    this.taskDuration.series(...labels).observe(info.seconds);
  }

  runFinished(info: { status: string; seconds: number; overheadSeconds: number }): void {
    const status = RUN_STATUSES.fold(info.status);
    this.runDuration.series(status).observe(info.seconds);
    this.runOverhead.series(status).observe(info.overheadSeconds);
  }
}
