// Docker cannot run here, so the compose file is checked by reading it: every
// service, command, port, health check, volume and environment variable must
// refer to something that exists in this repository.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "@switchboard/catalog";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const rootScripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, unknown>;
  healthcheck?: { test: string[] };
}

/** Every TypeScript source file of the product (not tests). */
function sources(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (name === "node_modules" || name === "test") return [];
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".ts") && !path.endsWith(".test.ts") ? [path] : [];
  });
}
const productCode = [...sources(join(root, "apps")), ...sources(join(root, "packages"))].map((path) => readFileSync(path, "utf8")).join("\n");

const ourServices = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);

describe("docker-compose.yml", () => {
  it("has redis, a gateway, scalable llama workers, an hf worker and the router, each with a health check", () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(["redis", "gateway", "worker-llama", "worker-hf", "router"]));
    for (const [name, service] of Object.entries(compose.services)) expect(service.healthcheck, `${name} health check`).toBeDefined();
    expect(compose.services["worker-llama"]!.ports, "replicas cannot share a host port").toBeUndefined();
  });

  it("builds from Dockerfiles that exist and copy files that exist", () => {
    for (const [name, service] of ourServices) {
      const dockerfile = join(root, service.build!.context, service.build!.dockerfile);
      expect(existsSync(dockerfile), `${name}: ${service.build!.dockerfile}`).toBe(true);
      for (const match of readFileSync(dockerfile, "utf8").matchAll(/^COPY\s+(.+)\s+\S+$/gm)) {
        for (const source of match[1]!.split(/\s+/)) expect(existsSync(join(root, service.build!.context, source)), `${name}: COPY ${source}`).toBe(true);
      }
    }
  });

  it("runs only commands that are scripts of the root package.json", () => {
    for (const [name, service] of ourServices) {
      const command = service.command ?? [];
      const script = command.at(-1)!;
      expect(command.slice(0, 3), `${name} runs through the pinned pnpm`).toEqual(["npx", "-y", "pnpm@12.4.2"]);
      expect(rootScripts[script], `${name}: script '${script}'`).toBeDefined();
    }
  });

  it("sets only environment variables the code reads, and the fleet ones every service needs", () => {
    for (const [name, service] of ourServices) {
      const environment = service.environment ?? {};
      for (const variable of Object.keys(environment)) {
        expect(productCode.includes(variable), `${name}: ${variable} is read somewhere`).toBe(true);
      }
      expect(environment.REDIS_URL, `${name}: REDIS_URL`).toMatch(/^redis:\/\/redis:6379/);
      expect(environment.PORT, `${name}: PORT`).toMatch(/^\d+$/);
    }
  });

  it("publishes and health-checks the port each service listens on, on routes it serves", () => {
    for (const [name, service] of ourServices) {
      const port = service.environment!.PORT!;
      for (const mapping of service.ports ?? []) expect(mapping.split(":").at(-1), `${name} container port`).toBe(port);
      const check = service.healthcheck!.test.join(" ");
      const url = /http:\/\/127\.0\.0\.1:(\d+)(\/[a-z]+)/.exec(check);
      expect(url, `${name}: health check URL`).not.toBeNull();
      expect(url![1], `${name}: health check port`).toBe(port);
      expect(productCode.includes(`"${url![2]}"`), `${name}: route ${url![2]} exists`).toBe(true);
    }
  });

  it("mounts folders that exist and points every service at a config file that loads", async () => {
    for (const [name, service] of ourServices) {
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(":");
        if (source!.startsWith(".")) expect(existsSync(join(root, source!)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes?.[source!], `${name}: named volume ${source}`).toBeDefined();
      }
      const configPath = service.environment!.SWITCHBOARD_CONFIG!;
      expect(configPath.startsWith("/app/")).toBe(true);
      const config = await loadConfig({ path: join(root, configPath.slice("/app/".length)), env: {} });
      expect(config.models.length).toBeGreaterThan(0);
    }
  });

  it("wires Prometheus and Grafana to provisioning files that exist", () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(["prometheus", "grafana"]));
    for (const name of ["prometheus", "grafana"]) {
      for (const volume of compose.services[name]!.volumes ?? []) {
        const [source] = volume.split(":");
        if (source!.startsWith(".")) expect(existsSync(join(root, source!)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes?.[source!], `${name}: named volume ${source}`).toBeDefined();
      }
    }
    const scraped = parse(readFileSync(join(root, "deploy/prometheus/prometheus.yml"), "utf8")) as { scrape_configs: { dns_sd_configs?: { names: string[]; port: number }[] }[] };
    const targets = scraped.scrape_configs.flatMap((job) => job.dns_sd_configs ?? []).flatMap((sd) => sd.names.map((name) => `${name}:${sd.port}`));
    for (const [name, service] of ourServices) expect(targets, `Prometheus scrapes ${name}:${service.environment!.PORT}`).toContain(`${name}:${service.environment!.PORT}`);
  });

  it("only depends on services it defines", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(compose.services[dependency], `${name} → ${dependency}`).toBeDefined();
    }
  });
});
