import { describe, expect, it } from "vitest";
import { lazyChild, type LogLevel, type Logger } from "./logger.js";

const order: LogLevel[] = ["debug", "info", "warn", "error"];

/** A logger at `level` that records the children it makes and the lines they write. */
function recordingLogger(level: LogLevel, bindings: Record<string, unknown> = {}, record = { children: 0, lines: [] as object[] }) {
  const write = (at: LogLevel) => (object: object | string, message?: string) => {
    if (order.indexOf(at) >= order.indexOf(level)) record.lines.push({ level: at, ...bindings, ...(typeof object === "string" ? { msg: object } : { ...object, msg: message }) });
  };
  const logger: Logger = {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child(more) {
      record.children++;
      return recordingLogger(level, { ...bindings, ...more }, record).logger;
    },
    isLevelEnabled: (at) => order.indexOf(at) >= order.indexOf(level),
  };
  return { logger, record };
}

describe("lazyChild", () => {
  it("writes with its bindings, making the child once", () => {
    const { logger, record } = recordingLogger("info");
    const job = lazyChild(logger, { requestId: "r1" });
    job.info({ attempt: 1 }, "job finished");
    job.warn("slow");
    expect(record.children).toBe(1);
    expect(record.lines).toEqual([
      { level: "info", requestId: "r1", attempt: 1, msg: "job finished" },
      { level: "warn", requestId: "r1", msg: "slow" },
    ]);
  });

  it("makes no child for a line its parent's level drops", () => {
    const { logger, record } = recordingLogger("warn");
    const job = lazyChild(logger, { requestId: "r2" }).child({ jobId: "j2" });
    job.debug("detail");
    job.info("job finished");
    expect(job.isLevelEnabled?.("info")).toBe(false);
    expect(record.children).toBe(0);
    job.error("failed");
    expect(record.children).toBe(1);
    expect(record.lines).toEqual([{ level: "error", requestId: "r2", jobId: "j2", msg: "failed" }]);
  });
});
