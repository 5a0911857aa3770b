/**
 * One circuit per model: closed (calls flow), open after `failureThreshold`
 * consecutive failures (calls refused at once), half-open after `coolDownMs`
 * (one probe call at a time; its success closes the circuit, its failure
 * opens it again for another cool-down).
 */

export type CircuitState = "closed" | "open" | "half-open";

export interface CircuitBreakerOptions {
  failureThreshold: number;
  coolDownMs: number;
  now?: () => number;
}

interface Circuit {
  failures: number;
  openedAt: number | undefined;
  /** When the current probe was let through; a probe never settled goes stale after a cool-down. */
  probeStartedAt: number | undefined;
}

export type CircuitTicket =
  | { allowed: true; probe: boolean }
  | { allowed: false; retryAfterMs: number };

export class CircuitBreaker {
  private readonly circuits = new Map<string, Circuit>();
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  private circuit(key: string): Circuit {
    let circuit = this.circuits.get(key);
    if (!circuit) {
      circuit = { failures: 0, openedAt: undefined, probeStartedAt: undefined };
      this.circuits.set(key, circuit);
    }
    return circuit;
  }

  state(key: string): CircuitState {
    const circuit = this.circuits.get(key);
    if (!circuit || circuit.openedAt === undefined) return "closed";
    return this.now() - circuit.openedAt >= this.options.coolDownMs ? "half-open" : "open";
  }

  /** Asks to make a call. A probe ticket must be settled with success, failure or release. */
  acquire(key: string): CircuitTicket {
    const circuit = this.circuit(key);
    if (circuit.openedAt === undefined) return { allowed: true, probe: false };
    const waited = this.now() - circuit.openedAt;
    if (waited < this.options.coolDownMs) return { allowed: false, retryAfterMs: this.options.coolDownMs - waited };
    const now = this.now();
    if (circuit.probeStartedAt !== undefined && now - circuit.probeStartedAt < this.options.coolDownMs) {
      return { allowed: false, retryAfterMs: Math.min(this.options.coolDownMs, 1_000) };
    }
    circuit.probeStartedAt = now;
    return { allowed: true, probe: true };
  }

  success(key: string): void {
    const circuit = this.circuit(key);
    circuit.failures = 0;
    circuit.openedAt = undefined;
    circuit.probeStartedAt = undefined;
  }

  failure(key: string): void {
    const circuit = this.circuit(key);
    circuit.failures += 1;
    if (circuit.probeStartedAt !== undefined || circuit.failures >= this.options.failureThreshold) circuit.openedAt = this.now();
    circuit.probeStartedAt = undefined;
  }

  /** Settles a call whose outcome says nothing about the model's health (cancelled, bad input, loading). */
  release(key: string): void {
    this.circuit(key).probeStartedAt = undefined;
  }
}
