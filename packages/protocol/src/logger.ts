/** The logging surface packages use: a subset of pino, so Fastify's logger fits. */
export interface Logger {
  debug(object: object | string, message?: string): void;
  info(object: object | string, message?: string): void;
  warn(object: object | string, message?: string): void;
  error(object: object | string, message?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  /** pino's: whether a level is logged at all (loggers without it log every level they are given). */
  isLevelEnabled?(level: LogLevel): boolean;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

/** A logger that drops everything, for tests and library defaults. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/**
 * A child logger made only when something is logged at a level the parent
 * logs. pino serialises a child's bindings when the child is made, which
 * costs more than most calls log; per-job and per-call children are
 * therefore lazy (and one small object each, not a set of closures).
 */
class LazyChild implements Logger {
  #child: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Record<string, unknown>,
  ) {}

  #log(level: LogLevel, object: object | string, message?: string): void {
    if (this.parent.isLevelEnabled?.(level) === false) return;
    (this.#child ??= this.parent.child(this.bindings))[level](object, message);
  }

  debug(object: object | string, message?: string): void {
    this.#log("debug", object, message);
  }

  info(object: object | string, message?: string): void {
    this.#log("info", object, message);
  }

  warn(object: object | string, message?: string): void {
    this.#log("warn", object, message);
  }

  error(object: object | string, message?: string): void {
    this.#log("error", object, message);
  }

  isLevelEnabled(level: LogLevel): boolean {
    return this.parent.isLevelEnabled?.(level) ?? true;
  }

  child(more: Record<string, unknown>): Logger {
    return new LazyChild(this.parent, { ...this.bindings, ...more });
  }
}

export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  return new LazyChild(parent, bindings);
}
