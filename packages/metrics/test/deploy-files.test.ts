/**
 * The Prometheus and Grafana files under deploy/ agree with each other and
 * with the metrics this package defines: Prometheus accepts its config and
 * scrapes every fleet service, the dashboard names the provisioned
 * datasource, and every metric a dashboard query reads exists.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMetrics, parseExposition } from "../src/index.js";
import { requireProgram } from "../src/testing.js";

const root = join(import.meta.dirname, "..", "..", "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

interface Dashboard {
  uid: string;
  panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string; datasource?: { uid: string } }[] }[];
}

describe("deploy/prometheus", () => {
  it("passes promtool check config and scrapes every service of the fleet", () => {
    requireProgram("promtool");
    const result = spawnSync("promtool", ["check", "config", join(root, "deploy/prometheus/prometheus.yml")], { encoding: "utf8" });
    expect(`${result.stdout}${result.stderr}`).toContain("SUCCESS");
    expect(result.status).toBe(0);
    const text = read("deploy/prometheus/prometheus.yml");
    const jobs = [...text.matchAll(/job_name: (\S+)/g)].map((match) => match[1]);
    expect(jobs).toEqual(["gateway", "worker-llama", "worker-hf", "router", "prometheus"]);
    // Replicas are found by DNS, each service on the port it serves /metrics on.
    for (const [service, port] of [["gateway", 8080], ["worker-llama", 8081], ["worker-hf", 8082], ["router", 8083]] as const) {
      expect(text).toMatch(new RegExp(`names: \\[${service}\\]\\s+type: A\\s+port: ${port}`));
    }
  });
});

describe("deploy/grafana", () => {
  const dashboard = JSON.parse(read("deploy/grafana/dashboards/switchboard.json")) as Dashboard;

  it("the dashboard reads the provisioned datasource, and the provider loads the mounted folder", () => {
    const uid = /uid: (\S+)/.exec(read("deploy/grafana/provisioning/datasources/prometheus.yml"))![1];
    const panels = dashboard.panels.filter((panel) => panel.type !== "row");
    expect(panels.length).toBeGreaterThanOrEqual(25);
    for (const panel of panels) {
      expect(panel.datasource?.uid, panel.title).toBe(uid);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe(uid);
    }
    expect(read("deploy/grafana/provisioning/dashboards/switchboard.yml")).toContain("path: /etc/grafana/dashboards");
  });

  it("has the panel groups operators need", () => {
    const rows = dashboard.panels.filter((panel) => panel.type === "row").map((panel) => panel.title);
    expect(rows).toEqual(["Traffic", "Latency", "Tokens", "Queues", "Workers", "Upstream (Hugging Face)", "Router"]);
  });

  it("every metric a query reads is one createMetrics defines (or a prom-client process metric)", async () => {
    const metrics = createMetrics();
    const defined = new Set(parseExposition(await metrics.registry.metrics()).types.keys());
    const exists = (name: string) => defined.has(name) || defined.has(name.replace(/_(bucket|sum|count)$/, ""));
    const read = new Set(dashboard.panels.flatMap((panel) => (panel.targets ?? []).flatMap((target) => [...target.expr.matchAll(/\b(switchboard_\w+|process_\w+|nodejs_\w+)/g)].map((match) => match[1]!))));
    expect(read.size).toBeGreaterThanOrEqual(30);
    expect([...read].filter((name) => !exists(name))).toEqual([]);
  });
});
