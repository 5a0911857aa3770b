/**
 * Helpers for tests that check what `/metrics` says (`@switchboard/metrics/testing`):
 * a strict reader of the text format and `promtool check metrics`.
 */
import { spawnSync } from "node:child_process";

export { parseExposition, sampleSum, seriesCount, type Exposition, type Sample } from "./exposition.js";

/** How to get the system programs the observability tests use (Debian packages). */
export const SYSTEM_PROGRAMS_HINT = "Install them with: apt-get install prometheus chromium (Debian/Ubuntu; promtool comes with prometheus).";

/** Whether a program is on the PATH. */
export function onPath(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

/** Throws a clear error when a system program the test needs is missing (never a silent skip). */
export function requireProgram(program: string): void {
  if (!onPath(program)) throw new Error(`'${program}' is not installed. ${SYSTEM_PROGRAMS_HINT}`);
}

/** Runs `promtool check metrics` on an exposition: `ok` when it parses and lints clean. */
export function promtoolCheck(text: string): { ok: boolean; output: string } {
  requireProgram("promtool");
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}`.trim() };
}
