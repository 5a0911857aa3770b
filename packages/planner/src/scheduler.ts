/**
 * The execute stage: the plan as a DAG. Every task whose dependencies have
 * succeeded starts at once (independent tasks run at the same time, as jobs
 * on whatever workers the executor reaches); `<GENERATED>-k` arguments are
 * filled from earlier outputs, binary ones by reference; a failed task skips
 * everything downstream of it; the run's deadline and task budget bound the
 * work; aborting the run's signal aborts running tasks and starts nothing
 * more. The stage resolves as soon as every task has an outcome; results of
 * tasks it gave up on are ignored.
 */
import { GatewayError, asGatewayError } from "@switchboard/protocol";
import type { ModelClock } from "./llm-call.js";
import { parseReference } from "./plan-validation.js";
import { collectArtifacts, describeValue, extractModality } from "./results.js";
import type {
  OrchestrationObserver,
  Plan,
  ProgressEvent,
  ResolvedArgument,
  RunInput,
  SelectionRecord,
  TaskExecutor,
  TaskRecord,
  TaskSignature,
  TaskStatus,
} from "./types.js";

export interface ExecuteStageOptions {
  runId: string;
  requestId: string;
  plan: Plan;
  selections: readonly SelectionRecord[];
  /** Signatures of the plan's tasks, for the modality of each argument. */
  available: readonly TaskSignature[];
  inputs: readonly RunInput[];
  executor: TaskExecutor;
  /** The run's signal: aborting it cancels the stage. */
  signal: AbortSignal;
  /** Epoch milliseconds after which running tasks are aborted and pending ones skipped. */
  deadlineAt?: number;
  /** Most tasks to start; the rest are skipped. */
  taskBudget?: number;
  /** Epoch-milliseconds clock (tests). */
  now?: () => number;
  clock?: ModelClock;
  onProgress?: (event: ProgressEvent) => void;
  observer?: OrchestrationObserver;
}

const DONE_STATES: ReadonlySet<TaskStatus> = new Set(["succeeded", "failed", "skipped", "cancelled"]);

export function executePlan(options: ExecuteStageOptions): Promise<TaskRecord[]> {
  const now = options.now ?? Date.now;
  const { plan, runId } = options;
  const signatures = new Map(options.available.map((signature) => [signature.task, signature]));
  const selections = new Map(options.selections.map((selection) => [selection.taskId, selection]));
  const records: TaskRecord[] = plan.map((task) => {
    const selection = selections.get(task.id);
    return { id: task.id, task: task.task, model: selection?.model ?? null, backend: selection?.backend ?? null, status: "pending", artifacts: [] };
  });
  const outputs = new Map<number, unknown>();
  const controllers = new Map<number, AbortController>();
  const budget = options.taskBudget ?? Infinity;
  let started = 0;

  return new Promise<TaskRecord[]>((resolve) => {
    let finished = false;
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined;

    const emit = (event: ProgressEvent) => options.onProgress?.(event);
    const conclude = (record: TaskRecord, status: TaskStatus, detail: { reason?: string; error?: GatewayError } = {}) => {
      record.status = status;
      if (detail.reason) record.reason = detail.reason;
      if (detail.error) record.error = detail.error.toPayload();
      if (record.startedAt !== undefined) {
        record.finishedAt = now();
        record.durationMs = record.finishedAt - record.startedAt;
      }
      controllers.delete(record.id);
      options.observer?.taskFinished?.({ task: record.task, backend: record.backend ?? "none", status, seconds: (record.durationMs ?? 0) / 1000 });
      emit({
        type: "task-finished",
        runId,
        taskId: record.id,
        task: record.task,
        status,
        ...(record.durationMs === undefined ? {} : { durationMs: record.durationMs }),
        ...(record.error ? { error: record.error } : {}),
        ...(record.reason ? { reason: record.reason } : {}),
      });
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      if (deadlineTimer) clearTimeout(deadlineTimer);
      options.signal.removeEventListener("abort", onAbort);
      resolve(records);
    };
    /** Ends the stage now: running tasks are aborted, pending ones never start. */
    const stopAll = (reason: string, pendingStatus: TaskStatus) => {
      if (finished) return;
      for (const record of records) {
        if (record.status === "running") {
          controllers.get(record.id)?.abort(new GatewayError(`Task stopped: ${reason}.`, { status: 499, type: "server_error", code: "task_cancelled" }));
          conclude(record, "cancelled", { reason });
        } else if (record.status === "pending") conclude(record, pendingStatus, { reason });
      }
      finish();
    };
    const onAbort = () => stopAll("the run was cancelled", "cancelled");

    const resolveArguments = (index: number): Record<string, ResolvedArgument> => {
      const task = plan[index]!;
      const signature = signatures.get(task.task);
      const args: Record<string, ResolvedArgument> = {};
      for (const [name, value] of Object.entries(task.args)) {
        const reference = parseReference(value);
        if (!reference) {
          args[name] = value;
          continue;
        }
        const modality = signature?.inputs.find((input) => input.name === name)?.modality ?? "text";
        if (reference.kind === "input") {
          const input = options.inputs[reference.index];
          if (!input) throw new GatewayError(`Input ${reference.index} does not exist.`, { status: 400, type: "invalid_request_error", code: "missing_input" });
          args[name] = input.value;
          continue;
        }
        const resolved = extractModality(outputs.get(reference.index), modality);
        if (resolved === undefined) {
          throw new GatewayError(`Task ${reference.index} produced no ${modality} for '${name}'.`, { status: 502, type: "server_error", code: "missing_task_output" });
        }
        args[name] = resolved;
      }
      return args;
    };

    const start = (index: number) => {
      const record = records[index]!;
      const selection = selections.get(index);
      if (!selection?.model) {
        conclude(record, "failed", { error: new GatewayError(selection?.reason ?? `No model was chosen for '${record.task}'.`, { status: 503, type: "service_unavailable_error", code: "no_model" }) });
        return;
      }
      if (started >= budget) {
        conclude(record, "skipped", { reason: `the run's task budget (${budget}) is spent` });
        return;
      }
      let args: Record<string, ResolvedArgument>;
      try {
        args = resolveArguments(index);
      } catch (error) {
        conclude(record, "failed", { error: asGatewayError(error) });
        return;
      }
      started += 1;
      record.status = "running";
      record.startedAt = now();
      record.inputs = Object.fromEntries(
        Object.entries(args).map(([name, value]) => {
          const given = plan[index]!.args[name]!;
          return [name, parseReference(given) ? { reference: given, value: describeValue(value) } : describeValue(value)];
        }),
      );
      const controller = new AbortController();
      controllers.set(index, controller);
      emit({ type: "task-started", runId, taskId: index, task: record.task, model: selection.model });
      const endModelTime = options.clock?.begin();
      const execution = {
        runId,
        requestId: options.requestId,
        taskId: index,
        task: record.task,
        model: selection.model,
        backend: selection.backend ?? "unknown",
        fallbackModels: selection.fallbackModels,
        args,
        ...(options.deadlineAt === undefined ? {} : { deadlineAt: options.deadlineAt }),
      };
      new Promise<Awaited<ReturnType<TaskExecutor["run"]>>>((resolveRun) => resolveRun(options.executor.run(execution, controller.signal))).then(
        (result) => {
          endModelTime?.();
          if (finished || record.status !== "running") return;
          outputs.set(index, result.output);
          record.output = result.output;
          record.artifacts = collectArtifacts(result.output);
          if (result.model) record.model = result.model;
          conclude(record, "succeeded");
          schedule();
        },
        (error: unknown) => {
          endModelTime?.();
          if (finished || record.status !== "running") return;
          conclude(record, "failed", { error: asGatewayError(error) });
          schedule();
        },
      );
    };

    /** Starts every task whose inputs exist and skips every task downstream of a failure, until nothing changes. */
    const schedule = () => {
      if (finished) return;
      let changed = true;
      while (changed && !finished) {
        changed = false;
        for (const [index, task] of plan.entries()) {
          const record = records[index]!;
          if (record.status !== "pending") continue;
          const deps = task.dep.filter((dep) => dep >= 0);
          const broken = deps.find((dep) => records[dep] && DONE_STATES.has(records[dep]!.status) && records[dep]!.status !== "succeeded");
          if (broken !== undefined) {
            const status = records[broken]!.status;
            conclude(record, "skipped", { reason: `task ${broken} ${status === "failed" ? "failed" : status === "cancelled" ? "was cancelled" : "was skipped"}` });
            changed = true;
          } else if (deps.every((dep) => records[dep]?.status === "succeeded")) {
            start(index);
            changed = true;
          }
        }
      }
      if (records.every((record) => DONE_STATES.has(record.status))) finish();
    };

    if (options.signal.aborted) return stopAll("the run was cancelled", "cancelled");
    options.signal.addEventListener("abort", onAbort, { once: true });
    if (options.deadlineAt !== undefined) {
      const remaining = options.deadlineAt - now();
      if (remaining <= 0) return stopAll("the run deadline passed", "skipped");
      deadlineTimer = setTimeout(() => stopAll("the run deadline passed", "skipped"), remaining);
    }
    schedule();
  });
}
