/**
 * One line of text per progress report, for chat clients: the router's chat
 * stream sends these as `reasoning_content` deltas, which chat UIs show as
 * the model's thinking, apart from the answer.
 */
import type { ProgressEvent } from "./types.js";

export function progressText(event: ProgressEvent): string {
  switch (event.type) {
    case "run-started":
      return "Planning the tasks.\n";
    case "plan": {
      if (event.plan.length === 0) return event.fallbackReason ? `No plan (${event.fallbackReason}); answering directly.\n` : "No task needs a specialist model; answering directly.\n";
      const steps = event.plan.map((task) => `${task.id}. ${task.task}(${Object.entries(task.args).map(([name, value]) => `${name}=${shorten(value)}`).join(", ")})`);
      return `Plan (${event.source}${event.replans > 0 ? `, ${event.replans} re-plan${event.replans === 1 ? "" : "s"}` : ""}): ${steps.join("; ")}\n`;
    }
    case "selection":
      return event.selection.model === null
        ? `Task ${event.selection.taskId} (${event.selection.task}): no model available. ${event.selection.reason}\n`
        : `Task ${event.selection.taskId} (${event.selection.task}): ${event.selection.model}. ${event.selection.reason}\n`;
    case "task-started":
      return `Task ${event.taskId} (${event.task}) started on ${event.model}.\n`;
    case "task-finished": {
      const took = event.durationMs === undefined ? "" : ` in ${Math.round(event.durationMs)} ms`;
      const why = event.error?.message ?? event.reason;
      return `Task ${event.taskId} (${event.task}) ${event.status}${took}${why ? `: ${why}` : ""}.\n`;
    }
    case "answer-delta":
      return event.text;
    case "run-finished":
      return `Run ${event.status}.\n`;
  }
}

function shorten(value: string): string {
  const text = value.startsWith("data:") ? `${value.slice(0, value.indexOf(",") + 1)}...` : value;
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}
