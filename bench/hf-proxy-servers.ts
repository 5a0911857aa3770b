/**
 * The processes `bench/hf-proxy.ts` measures, one role per process:
 *
 *   tsx bench/hf-proxy-servers.ts <role> '<options JSON>'
 *
 * - `mock`: an OpenAI-compatible chat server with no delay: 20 content
 *   chunks when streamed, the same text in one JSON answer otherwise;
 * - `floor`: a bare Fastify + undici pass-through to the mock (the floor for
 *   any Node gateway);
 * - `embedded`: Switchboard's all-in-one composition with one remote chat
 *   model whose `endpointUrl` is the mock (`recordMetrics: false` for the
 *   diagnostic run without metrics);
 * - `fleet-gateway`, `fleet-worker`: the same split over BullMQ on Redis.
 *
 * Each prints `ready <port>` on stdout once it listens.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const [role, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions ?? "{}") as { mockUrl?: string; redisUrl?: string; prefix?: string; logLevel?: string; recordMetrics?: boolean };

/** The config of the Switchboard processes: one remote chat model on the mock. */
async function switchboardConfig() {
  const { parseConfig } = await import("@switchboard/catalog");
  return parseConfig(
    {
      server: { host: "127.0.0.1", port: 0, logLevel: options.logLevel ?? "warn" },
      models: [{ id: "remote-chat", backend: "hf", model: "acme/chat", task: "conversational", endpointUrl: `${options.mockUrl}/v1`, timeoutMs: 30_000 }],
    },
    { env: {}, baseDir: process.cwd() },
  );
}

const ready = (port: number) => process.stdout.write(`ready ${port}\n`);

switch (role) {
  case "mock": {
    const words = Array.from({ length: 20 }, (_, index) => `word${index} `);
    const created = Math.floor(Date.now() / 1000);
    const head = `{"id":"chatcmpl-mock","object":"chat.completion.chunk","created":${created},"model":"mock","choices":[`;
    const frames = words.map((word) => `data: ${head}{"index":0,"delta":{"content":"${word}"},"finish_reason":null}]}\n\n`);
    frames[0] = `data: ${head}{"index":0,"delta":{"role":"assistant","content":"${words[0]}"},"finish_reason":null}]}\n\n`;
    const finish = `data: ${head}{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n`;
    const usage = `data: ${head}],"usage":{"prompt_tokens":9,"completion_tokens":20,"total_tokens":29}}\n\n`;
    const json = JSON.stringify({
      id: "chatcmpl-mock",
      object: "chat.completion",
      created,
      model: "mock",
      choices: [{ index: 0, message: { role: "assistant", content: words.join("") }, finish_reason: "stop", logprobs: null }],
      usage: { prompt_tokens: 9, completion_tokens: 20, total_tokens: 29 },
    });
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        if (request.method !== "POST" || !request.url?.endsWith("/chat/completions")) {
          response.writeHead(404, { "content-type": "application/json" });
          response.end('{"error":"not found"}');
          return;
        }
        const body = Buffer.concat(chunks).toString("utf8");
        // The requests are ours: a substring test is enough and keeps the mock cheap.
        if (body.includes('"stream":true')) {
          response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          for (const frame of frames) response.write(frame);
          response.end((body.includes('"include_usage":true') ? finish + usage : finish) + "data: [DONE]\n\n");
          return;
        }
        response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
        response.end(json);
      });
    });
    server.keepAliveTimeout = 60_000;
    server.listen(0, "127.0.0.1", () => ready((server.address() as AddressInfo).port));
    break;
  }

  case "floor": {
    const { default: fastify } = await import("fastify");
    const { Pool } = await import("undici");
    const pool = new Pool(options.mockUrl!, { connections: 128 });
    const app = fastify({ logger: false });
    app.post("/v1/chat/completions", async (request, reply) => {
      const upstream = await pool.request({ path: "/v1/chat/completions", method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request.body) });
      reply.code(upstream.statusCode).header("content-type", String(upstream.headers["content-type"] ?? "application/json"));
      return reply.send(upstream.body);
    });
    const address = await app.listen({ port: 0, host: "127.0.0.1" });
    ready(Number(new URL(address).port));
    break;
  }

  case "embedded": {
    const { createEmbeddedServer } = await import("@switchboard/embedded");
    const { pino } = await import("pino");
    const config = await switchboardConfig();
    const server = await createEmbeddedServer({ config, logger: pino({ level: config.server.logLevel }), recordMetrics: options.recordMetrics !== false });
    const address = await server.app.listen({ port: 0, host: "127.0.0.1" });
    ready(Number(new URL(address).port));
    break;
  }

  case "fleet-gateway": {
    const { ArtifactUrlSigner, createArtifactStore } = await import("@switchboard/artifacts");
    const { Catalog } = await import("@switchboard/catalog");
    const { buildGateway, queueForCatalog } = await import("@switchboard/gateway");
    const { BullmqDispatcher } = await import("@switchboard/queue");
    const { pino } = await import("pino");
    const config = await switchboardConfig();
    const catalog = new Catalog(config);
    const dispatcher = new BullmqDispatcher({ connection: options.redisUrl!, prefix: options.prefix, queueFor: queueForCatalog(catalog), maxWaiting: 1000 });
    const app = await buildGateway({
      config,
      catalog,
      dispatcher,
      logger: pino({ level: config.server.logLevel }),
      readiness: "transport",
      artifacts: {
        store: createArtifactStore(config.artifacts, { fleetRedisUrl: options.redisUrl!, prefix: options.prefix! }),
        signer: new ArtifactUrlSigner(),
        urlTtlSeconds: config.artifacts.urlTtlSeconds,
      },
    });
    const address = await app.listen({ port: 0, host: "127.0.0.1" });
    ready(Number(new URL(address).port));
    break;
  }

  case "fleet-worker": {
    const { startHfWorker } = await import("@switchboard/worker-hf");
    const { pino } = await import("pino");
    const config = await switchboardConfig();
    const worker = await startHfWorker({ config, redisUrl: options.redisUrl!, prefix: options.prefix!, port: 0, host: "127.0.0.1", logger: pino({ level: config.server.logLevel }), concurrency: 64 });
    ready(Number(new URL(worker.url).port));
    break;
  }

  default:
    console.error(`unknown role '${role}'`);
    process.exit(2);
}
