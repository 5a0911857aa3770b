/**
 * The event-stream reader keeps the rules of the client's parser (the
 * vendored fetch-event-source): what an upstream stream means must not
 * depend on where the network cut it.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { EventStreamParser } from "./event-stream.js";
import { seededRandom } from "./test-support.js";

/** The client's own parser (not exported: loaded from the installed package), for a differential check. */
const require = createRequire(import.meta.url);
const clientParser = require(join(dirname(require.resolve("@huggingface/inference")), "vendor", "fetch-event-source", "parse.js")) as {
  getLines(onLine: (line: Uint8Array, fieldLength: number) => void): (bytes: Uint8Array) => void;
  getMessages(onId: () => void, onRetry: () => void, onMessage: (message: { data: string }) => void): (line: Uint8Array, fieldLength: number) => void;
};

/** What the client hands on: the data of each event, skipping empty ones (its `event.data.length > 0`). */
function readAsClient(pieces: Uint8Array[]): string[] {
  const events: string[] = [];
  const onChunk = clientParser.getLines(clientParser.getMessages(() => {}, () => {}, (message) => void (message.data.length > 0 && events.push(message.data))));
  for (const piece of pieces) onChunk(piece);
  return events;
}

/** Every event the text holds, fed in the given pieces. */
function read(pieces: Array<string | Uint8Array>): string[] {
  const parser = new EventStreamParser();
  return pieces.flatMap((piece) => parser.push(typeof piece === "string" ? Buffer.from(piece) : piece));
}

/** The same bytes cut at every position (and byte by byte), each giving `expected`. */
function expectAtEveryCut(text: string, expected: string[]): void {
  const bytes = Buffer.from(text);
  expect(read([bytes])).toEqual(expected);
  for (let cut = 1; cut < bytes.length; cut++) expect(read([bytes.subarray(0, cut), bytes.subarray(cut)]), `cut at ${cut}`).toEqual(expected);
  expect(read([...bytes].map((byte) => Uint8Array.of(byte)))).toEqual(expected);
}

describe("the event-stream reader", () => {
  it("gives one data string per event, across any cut of the bytes", () => {
    expectAtEveryCut('data: {"a":1}\n\ndata: {"b":"ü ✓"}\n\ndata: [DONE]\n\n', ['{"a":1}', '{"b":"ü ✓"}', "[DONE]"]);
  });

  it("ends lines at LF, CRLF or CR alike", () => {
    const expected = ["one", "two", "three"];
    expectAtEveryCut("data: one\r\n\r\ndata: two\r\rdata: three\n\n", expected);
    expectAtEveryCut("data: one\r\rdata: two\r\n\r\ndata: three\r\n\r\n", expected);
  });

  it("joins the data lines of an event with LF, dropping a first empty one", () => {
    expectAtEveryCut("data: a\ndata: b\n\ndata:\ndata: c\n\n", ["a\nb", "c"]);
  });

  it("takes one optional space after the colon, and drops a byte-order mark", () => {
    expectAtEveryCut("data:x\n\ndata:  y\n\ndata: \uFEFFz\n\n", ["x", " y", "z"]);
  });

  it("skips comments, other fields, unknown fields, lines without a colon and events without data", () => {
    expectAtEveryCut(": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: kept\n\ndatax: no\ndata\n\n\n\ndata: last\n\n", ["kept", "last"]);
  });

  it("never delivers a last event without its empty line", () => {
    expect(read(["data: complete\n\n", 'data: {"cut":'])).toEqual(["complete"]);
    expect(read(["data: complete\n\ndata: whole line\n"])).toEqual(["complete"]);
  });

  it("reads random streams, cut at random, exactly as the client's parser does", () => {
    const text = ["data:", "data: ", "data", "data:  ", "event: e", "id: 1", "retry: 5", ": comment", ":", "da:ta", "\n", "\n", "\n", "\r", "\r\n", "{}", '{"a":[1,"x"]}', "[DONE]", "ü", "✓", "\uFEFF", " ", "x"];
    // Bytes that are not UTF-8 (a cut-off sequence, a stray continuation or lead byte) decode to U+FFFD alike.
    const invalid = [[0xe2, 0x82], [0xff], [0xc3], [0x80], [0xf0, 0x9f, 0x98], [0xef, 0xbb]];
    const parts = [...text.map((part) => Buffer.from(part)), ...invalid.map((part) => Buffer.from(part))];
    for (let seed = 1; seed <= 2000; seed++) {
      const next = seededRandom(seed);
      const chosen: Buffer[] = [];
      const length = 5 + Math.floor(next() * 60);
      for (let index = 0; index < length; index++) chosen.push(parts[Math.floor(next() * parts.length)]!);
      const bytes = Buffer.concat(chosen);
      const pieces: Uint8Array[] = [];
      for (let start = 0; start < bytes.length; ) {
        const size = 1 + Math.floor(next() * 12);
        pieces.push(Uint8Array.from(bytes.subarray(start, start + size)));
        start += size;
      }
      expect(read(pieces), `seed ${seed}: ${bytes.toString("hex")}`).toEqual(readAsClient(pieces));
    }
  });
});
