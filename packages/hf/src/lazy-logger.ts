/**
 * A child logger made only when something is logged. pino serialises a
 * child's bindings when the child is made, which costs more than most calls
 * log; per-job and per-call children are therefore lazy.
 */
import type { Logger } from "@switchboard/protocol";

export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  const get = () => (child ??= parent.child(bindings));
  return {
    debug: (object, message) => get().debug(object, message),
    info: (object, message) => get().info(object, message),
    warn: (object, message) => get().warn(object, message),
    error: (object, message) => get().error(object, message),
    child: (more) => lazyChild(parent, { ...bindings, ...more }),
  };
}
