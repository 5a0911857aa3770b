import { silentLogger } from "@switchboard/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { startServiceHttp, type ServiceHttp } from "./service-http.js";

describe("startServiceHttp", () => {
  let http: ServiceHttp | undefined;
  let ready = false;
  let scrapes = 0;

  afterEach(async () => {
    await http?.close();
    http = undefined;
  });

  async function start() {
    http = await startServiceHttp({
      port: 0,
      host: "127.0.0.1",
      logger: silentLogger,
      registry: {
        contentType: "text/plain; version=0.0.4; charset=utf-8",
        metrics: async () => `# HELP demo_total Scrapes.\n# TYPE demo_total counter\ndemo_total ${++scrapes}\n`,
      },
      health: () => ({ workerId: "w-1" }),
      ready: () => ({ ready, body: { ready, models: [{ id: "m", state: ready ? "ready" : "loading" }] } }),
    });
    return http;
  }

  it("answers /health always, /ready by the callback's verdict, and /metrics from the registry at each scrape", async () => {
    const { url } = await start();

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", workerId: "w-1" });

    const notReady = await fetch(`${url}/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ ready: false, models: [{ id: "m", state: "loading" }] });
    ready = true;
    expect((await fetch(`${url}/ready?verbose=1`)).status).toBe(200);

    const first = await fetch(`${url}/metrics`);
    expect(first.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await first.text()).toContain("demo_total 1");
    expect(await (await fetch(`${url}/metrics`)).text()).toContain("demo_total 2");
  });

  it("refuses other paths and methods with an OpenAI-shaped error that names what it serves", async () => {
    const { url } = await start();

    const missing = await fetch(`${url}/v1/models`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { message: expect.stringContaining("GET /health, /ready, /metrics"), type: "invalid_request_error", param: null, code: "unknown_url" },
    });
    const posted = await fetch(`${url}/health`, { method: "POST", body: "{}" });
    expect(posted.status).toBe(405);
    expect(posted.headers.get("allow")).toBe("GET, HEAD");
    expect(((await posted.json()) as { error: unknown }).error).toMatchObject({ code: "method_not_allowed" });
  });

  it("answers 500 with an error body when the registry fails, and keeps serving", async () => {
    http = await startServiceHttp({
      port: 0,
      host: "127.0.0.1",
      logger: silentLogger,
      registry: { contentType: "text/plain", metrics: async () => Promise.reject(new Error("collector broke")) },
      health: () => ({}),
      ready: () => ({ ready: true, body: {} }),
    });

    const failed = await fetch(`${http.url}/metrics`);
    expect(failed.status).toBe(500);
    expect(JSON.stringify(await failed.json())).not.toContain("collector broke");
    expect((await fetch(`${http.url}/health`)).status).toBe(200);
  });

  it("closes with a scraper's keep-alive connection still open, and frees the port", async () => {
    const { url, close } = await start();
    await fetch(`${url}/metrics`, { headers: { connection: "keep-alive" } });

    await close();

    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });
});
