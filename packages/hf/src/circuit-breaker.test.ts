import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "./circuit-breaker.js";

describe("circuit breaker", () => {
  let now = 0;
  const breaker = () => new CircuitBreaker({ failureThreshold: 3, coolDownMs: 1_000, now: () => now });

  it("opens after consecutive failures only", () => {
    now = 0;
    const circuit = breaker();
    circuit.failure("m");
    circuit.failure("m");
    circuit.success("m");
    circuit.failure("m");
    circuit.failure("m");
    expect(circuit.state("m")).toBe("closed");
    circuit.failure("m");
    expect(circuit.state("m")).toBe("open");
    expect(circuit.acquire("m")).toEqual({ allowed: false, retryAfterMs: 1_000 });
    expect(circuit.acquire("other")).toEqual({ allowed: true, probe: false });
  });

  it("lets one probe through after the cool-down; its failure reopens, its success closes", () => {
    now = 0;
    const circuit = breaker();
    for (let i = 0; i < 3; i++) circuit.failure("m");
    now = 1_000;
    expect(circuit.state("m")).toBe("half-open");
    expect(circuit.acquire("m")).toEqual({ allowed: true, probe: true });
    expect(circuit.acquire("m").allowed).toBe(false);
    circuit.failure("m");
    expect(circuit.state("m")).toBe("open");
    now = 2_000;
    expect(circuit.acquire("m")).toEqual({ allowed: true, probe: true });
    circuit.success("m");
    expect(circuit.state("m")).toBe("closed");
    expect(circuit.acquire("m")).toEqual({ allowed: true, probe: false });
  });

  it("does not stay stuck on a probe that never settles", () => {
    now = 0;
    const circuit = breaker();
    for (let i = 0; i < 3; i++) circuit.failure("m");
    now = 1_000;
    expect(circuit.acquire("m").allowed).toBe(true);
    now = 1_500;
    expect(circuit.acquire("m").allowed).toBe(false);
    now = 2_000;
    expect(circuit.acquire("m")).toEqual({ allowed: true, probe: true });
  });
});
