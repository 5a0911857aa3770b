/**
 * SSRF: user-supplied URLs never reach loopback, private, link-local,
 * metadata or other non-public addresses, directly, through DNS, or through
 * a redirect. A listening server on loopback counts connections and must
 * stay at zero for every refusal.
 */
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_PNG } from "@switchboard/hf-wire-server";
import { GatewayError } from "@switchboard/protocol";
import { blockedReason, isAllowListed, parseIPv6 } from "./address-policy.js";
import { HfEngine } from "./hf-engine.js";
import { fetchUserUrl, type FetchUserUrlOptions, type ResolvedAddress } from "./user-url.js";
import { captureLogger, providerId, startWireFixture, type WireFixture } from "./test-support.js";

/** Counts TCP connections on loopback (IPv4, and IPv6 where the host has it). */
let target: TcpServer;
let targetPort = 0;
let targetConnections = 0;
let target6: TcpServer | undefined;
let target6Port = 0;

/** Serves images, redirects, slow and huge answers; reached only through allow-listed names. */
let media: Server;
let mediaPort = 0;

const hosts: Record<string, ResolvedAddress[]> = {
  "public.example": [{ address: "93.184.216.34", family: 4 }],
  "loopback.example": [{ address: "127.0.0.1", family: 4 }],
  "private.example": [{ address: "10.1.2.3", family: 4 }],
  "mixed.example": [
    { address: "93.184.216.34", family: 4 },
    { address: "127.0.0.1", family: 4 },
  ],
  "media.test": [{ address: "127.0.0.1", family: 4 }],
};
const resolve = async (hostname: string) => hosts[hostname] ?? [];

const base: FetchUserUrlOptions = { maxBytes: 64 * 1024, timeoutMs: 1_000, allowedContentTypes: ["image/*"], resolve };
const allowMedia: FetchUserUrlOptions = { ...base, allowList: ["media.test"] };

beforeAll(async () => {
  target = createTcpServer((socket) => {
    targetConnections += 1;
    socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 0\r\n\r\n"));
  });
  await new Promise<void>((done) => target.listen(0, "127.0.0.1", done));
  targetPort = (target.address() as AddressInfo).port;
  try {
    const server = createTcpServer(() => {
      targetConnections += 1;
    });
    await new Promise<void>((done, fail) => {
      server.once("error", fail);
      server.listen(0, "::1", done);
    });
    target6 = server;
    target6Port = (server.address() as AddressInfo).port;
  } catch {
    target6 = undefined; // no IPv6 loopback here; the refusal is still checked
  }

  media = createHttpServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://media.test");
    if (url.pathname === "/cat.png") {
      response.writeHead(200, { "content-type": "image/png", "content-length": TEST_PNG.length });
      return response.end(TEST_PNG);
    }
    if (url.pathname === "/to-loopback") {
      response.writeHead(302, { location: `http://127.0.0.1:${targetPort}/secret` });
      return response.end();
    }
    if (url.pathname === "/to-loopback-name") {
      response.writeHead(301, { location: `http://loopback.example:${targetPort}/secret` });
      return response.end();
    }
    if (url.pathname === "/to-cat") {
      response.writeHead(307, { location: "/cat.png" });
      return response.end();
    }
    if (url.pathname === "/loop") {
      response.writeHead(302, { location: "/loop" });
      return response.end();
    }
    if (url.pathname === "/page.html") {
      response.writeHead(200, { "content-type": "text/html" });
      return response.end("<html></html>");
    }
    if (url.pathname === "/huge.png") {
      response.writeHead(200, { "content-type": "image/png" });
      const chunk = Buffer.alloc(16 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < 10 * 1024 * 1024 && !response.destroyed) {
          sent += chunk.length;
          if (!response.write(chunk)) return void response.once("drain", pump);
        }
        response.end();
      };
      response.on("error", () => {});
      return pump();
    }
    if (url.pathname === "/slow.png") {
      const timer = setTimeout(() => response.end(), 5_000);
      response.on("close", () => clearTimeout(timer));
      return;
    }
    response.writeHead(404);
    response.end();
  });
  await new Promise<void>((done) => media.listen(0, "127.0.0.1", done));
  mediaPort = (media.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((done) => target.close(done));
  if (target6) await new Promise((done) => target6!.close(done));
  media.closeAllConnections();
  await new Promise((done) => media.close(done));
});

async function refusal(url: string, options: FetchUserUrlOptions = base): Promise<GatewayError> {
  try {
    await fetchUserUrl(url, options);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error(`${url} was fetched`);
}

describe("refused before any connection", () => {
  it.each([
    ["loopback", () => `http://127.0.0.1:${targetPort}/`, /127\.0\.0\.1 is a loopback address/],
    ["another loopback address", () => `http://127.8.9.10:${targetPort}/`, /loopback/],
    ["loopback written as a decimal number", () => `http://2130706433:${targetPort}/`, /loopback/],
    ["loopback written in octal", () => `http://0177.0.0.1:${targetPort}/`, /loopback/],
    ["the unspecified address", () => `http://0.0.0.0:${targetPort}/`, /unspecified/],
    ["a private 10.x address", () => "http://10.0.0.1/", /private/],
    ["a private 192.168.x address", () => "http://192.168.1.1/", /private/],
    ["a private 172.16.x address", () => "http://172.20.0.1/", /private/],
    ["carrier-grade NAT", () => "http://100.64.0.1/", /carrier-grade NAT/],
    ["link-local", () => "http://169.254.10.10/", /link-local/],
    ["the cloud metadata address", () => "http://169.254.169.254/latest/meta-data/", /cloud metadata/],
    ["IPv6 loopback", () => `http://[::1]:${target6Port || targetPort}/`, /::1 is a loopback address/],
    ["IPv4-mapped IPv6 loopback", () => `http://[::ffff:127.0.0.1]:${targetPort}/`, /IPv4-mapped/],
    ["IPv4-mapped IPv6 in hex", () => `http://[::ffff:7f00:1]:${targetPort}/`, /IPv4-mapped/],
    ["IPv6 unique-local", () => "http://[fd12:3456::1]/", /unique-local/],
    ["the IPv6 cloud metadata address", () => "http://[fd00:ec2::254]/", /cloud metadata/],
    ["IPv6 link-local", () => "http://[fe80::1]/", /link-local/],
    ["NAT64 of a private address", () => "http://[64:ff9b::a00:1]/", /NAT64 address of a private address/],
    ["a name that resolves to loopback", () => `http://loopback.example:${targetPort}/`, /'loopback.example' resolves to 127\.0\.0\.1, a loopback address/],
    ["a name that resolves to a private address", () => "http://private.example/", /resolves to 10\.1\.2\.3, a private address/],
    ["a name with one public and one loopback address", () => `http://mixed.example:${targetPort}/`, /loopback/],
    ["file://", () => "file:///etc/passwd", /Only http and https URLs can be fetched; 'file' URLs are refused/],
    ["ftp://", () => "ftp://93.184.216.34/x.png", /'ftp' URLs are refused/],
    ["credentials in the URL", () => "http://user:secret@public.example/", /credentials/],
  ])("%s", async (_name, url, message) => {
    const error = await refusal(url());
    expect(error).toMatchObject({ status: 400, type: "invalid_request_error", param: "inputs" });
    expect(error.message).toMatch(message);
  });

  it("a redirect to loopback (followed by hand, checked again)", async () => {
    const error = await refusal(`http://media.test:${mediaPort}/to-loopback`, allowMedia);
    expect(error).toMatchObject({ status: 400, code: "url_refused" });
    expect(error.message).toMatch(/127\.0\.0\.1 is a loopback address/);
  });

  it("a redirect to a name that resolves to loopback", async () => {
    const error = await refusal(`http://media.test:${mediaPort}/to-loopback-name`, allowMedia);
    expect(error.message).toMatch(/'loopback.example' resolves to 127\.0\.0\.1/);
  });

  it("reached the loopback target zero times", () => {
    expect(targetConnections).toBe(0);
  });
});

describe("allowed fetches are still capped", () => {
  it("fetches an allow-listed host, connecting to the address it checked", async () => {
    const fetched = await fetchUserUrl(`http://media.test:${mediaPort}/cat.png`, allowMedia);
    expect(fetched.contentType).toBe("image/png");
    expect(Buffer.compare(fetched.bytes, TEST_PNG)).toBe(0);
  });

  it("follows a redirect within the allow list", async () => {
    const fetched = await fetchUserUrl(`http://media.test:${mediaPort}/to-cat`, allowMedia);
    expect(fetched.url).toBe(`http://media.test:${mediaPort}/cat.png`);
  });

  it("allow-lists by CIDR range too", async () => {
    const fetched = await fetchUserUrl(`http://127.0.0.1:${mediaPort}/cat.png`, { ...base, allowList: ["127.0.0.0/8"] });
    expect(fetched.bytes.length).toBe(TEST_PNG.length);
  });

  it.each([
    ["too many redirects", "/loop", /redirected more than 3 times/],
    ["a content type that is not allowed", "/page.html", /content type 'text\/html' is not one of image\/\*/],
    ["a body over the size cap", "/huge.png", /larger than the limit of 65536 bytes/],
    ["a slow answer", "/slow.png", /did not answer within 1000 ms/],
    ["an error status", "/missing.png", /HTTP 404/],
  ])("refuses %s", async (_name, path, message) => {
    const started = Date.now();
    const error = await refusal(`http://media.test:${mediaPort}${path}`, allowMedia);
    expect(error).toMatchObject({ status: 400 });
    expect(error.message).toMatch(message);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe("through the engine", () => {
  let fixture: WireFixture;
  let engine: HfEngine;
  beforeAll(async () => {
    fixture = await startWireFixture({ userUrls: { allowList: ["media.test"], maxBytes: 1024 * 1024, timeoutMs: 1_000 } });
    engine = new HfEngine({ settings: fixture.settings, models: fixture.models, logger: captureLogger(), resolveHost: resolve });
  });
  afterAll(async () => {
    await fixture.server.close();
  });

  it("a task input URL on loopback is a 400 that says why, and the model is never called", async () => {
    const before = fixture.server.requests.length;
    await expect(engine.runTask(providerId("image-classification"), "image-classification", `http://127.0.0.1:${targetPort}/cat.png`, undefined)).rejects.toMatchObject({
      status: 400,
      code: "url_refused",
      message: expect.stringMatching(/loopback/),
    });
    expect(fixture.server.requests.length).toBe(before);
    expect(targetConnections).toBe(0);
  });

  it("an allow-listed task input URL is fetched and classified", async () => {
    const output = await engine.runTask(providerId("image-classification"), "image-classification", { type: "url", url: `http://media.test:${mediaPort}/cat.png` }, undefined);
    expect(output[0]!.label).toBe("tabby cat");
    expect(fixture.server.violations()).toEqual([]);
  });
});

describe("address policy", () => {
  it("parses IPv6 forms", () => {
    expect(parseIPv6("::1")).toEqual([...Array(15).fill(0), 1]);
    expect(parseIPv6("::ffff:127.0.0.1")?.slice(10)).toEqual([0xff, 0xff, 127, 0, 0, 1]);
    expect(parseIPv6("[2001:db8::1]")?.slice(0, 4)).toEqual([0x20, 0x01, 0x0d, 0xb8]);
    expect(parseIPv6("1::2::3")).toBeUndefined();
    expect(parseIPv6("12345::")).toBeUndefined();
  });

  it("lets public addresses through", () => {
    for (const address of ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"]) expect(blockedReason(address)).toBeUndefined();
    expect(blockedReason("not-an-ip")).toBe("not an IP address");
  });

  it("matches allow-list entries by name, wildcard, address and range", () => {
    expect(isAllowListed("Media.Test", "127.0.0.1", ["media.test"])).toBe(true);
    expect(isAllowListed("a.internal.example", "10.0.0.5", ["*.internal.example"])).toBe(true);
    expect(isAllowListed("x", "10.0.0.5", ["10.0.0.0/24"])).toBe(true);
    expect(isAllowListed("x", "10.0.1.5", ["10.0.0.0/24"])).toBe(false);
    expect(isAllowListed("x", "fd00::5", ["fd00::/8"])).toBe(true);
    expect(isAllowListed("x", "127.0.0.1", ["fd00::/8", "other.test"])).toBe(false);
  });
});

describe("control", () => {
  it("the loopback counter does count a connection that is allowed (so its zero means something)", async () => {
    const before = targetConnections;
    await fetchUserUrl(`http://127.0.0.1:${targetPort}/`, { ...base, allowList: ["127.0.0.1"] });
    expect(targetConnections).toBe(before + 1);
  });
});
