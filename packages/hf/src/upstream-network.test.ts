/**
 * The network under the owned fetch, on undici's dispatcher: bodies arrive
 * whole however slowly they are read (the socket is paused, not the bytes
 * piled up), and a request can be stopped before or during its answer.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { undiciNetwork, type Network } from "./upstream-network.js";

const BIG = randomBytes(3 * 1024 * 1024);
let server: Server;
let base: string;
let network: Network;
const held: ServerResponse[] = [];
const closed: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.socket.once("close", () => closed.push(request.url ?? ""));
    if (request.url === "/big") {
      response.setHeader("X-Twice", ["first", "second"]);
      response.writeHead(200, { "content-type": "application/octet-stream" });
      let sent = 0;
      const more = (): void => {
        while (sent < BIG.length) {
          const piece = BIG.subarray(sent, sent + 16 * 1024);
          sent += piece.length;
          if (!response.write(piece)) return void response.once("drain", more);
        }
        response.end();
      };
      more();
      return;
    }
    if (request.url === "/half") {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write("data: first\n\n");
    }
    // "/half" stops after its first bytes, "/never" before its head.
    held.push(response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  network = undiciNetwork();
});

afterAll(async () => {
  await network.close().catch(() => {});
  for (const response of held) response.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const get = (path: string) => network.send(`${base}${path}`, { method: "GET", headers: {}, body: undefined });

describe("the undici network", () => {
  it("delivers a body larger than it buffers intact to a slow reader, and reads headers case-insensitively", async () => {
    const response = await get("/big").answer;
    expect(response.status).toBe(200);
    expect(response.header("content-type")).toBe("application/octet-stream");
    expect(response.header("x-twice")).toBe("first");
    // Let the server run far ahead of the reader before reading at all.
    await sleep(100);
    const parts: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await response.chunks.next();
      if (done) break;
      parts.push(...value);
      if (parts.length % 8 === 0) await sleep(1);
    }
    expect(Buffer.compare(Buffer.concat(parts), BIG)).toBe(0);
  });

  it("stops a request before its answer: the answer rejects and the connection closes", async () => {
    const exchange = get("/never");
    await sleep(50);
    exchange.abort();
    await expect(exchange.answer).rejects.toThrow();
    await sleep(50);
    expect(closed).toContain("/never");
  });

  it("stops a body half-way: the pending read rejects and the connection closes", async () => {
    const response = await get("/half").answer;
    const first = await response.chunks.next();
    expect(Buffer.concat(first.value!).toString()).toBe("data: first\n\n");
    const pending = response.chunks.next();
    await sleep(20);
    response.cancel();
    await expect(pending).rejects.toThrow();
    await sleep(50);
    expect(closed).toContain("/half");
    // The socket it used is gone; the pool opens a new one for the next request.
    const again = await get("/big").answer;
    expect(again.status).toBe(200);
    again.cancel();
  });
});
