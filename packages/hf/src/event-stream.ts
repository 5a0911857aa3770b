/**
 * Server-sent events read from a body's bytes, for the upstream's
 * OpenAI-style chat streams. The engine reads these itself rather than
 * through the client's generator: one pass over each network read, no object
 * per line, and the events of one read come back together (they are passed
 * on as one batch).
 *
 * The rules are the client's parser's (its vendored fetch-event-source), so
 * what a stream means does not change with the reader: lines end at CR, LF
 * or CRLF (also across reads); an empty line ends an event; the `data` lines
 * of an event are joined with LF (a first empty one is dropped); other
 * fields, comments and lines without a colon are skipped; a byte-order mark
 * before a field name or a value is dropped; a last event without its empty
 * line is never delivered. `event-stream.test.ts` checks this against the
 * client's parser on random input.
 */

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

export class EventStreamParser {
  /** An unfinished line from the previous read. */
  #rest: Buffer | undefined;
  /** The data of the event being read; undefined while it has none. */
  #data: string | undefined;
  /** The previous read ended in CR: an LF at the start of this one belongs to it. */
  #afterCr = false;

  /** The data of each event these reads complete, in order: {@link push} of each, without joining the bytes. */
  pushAll(reads: readonly Uint8Array[]): string[] {
    if (reads.length === 1) return this.push(reads[0]!);
    const events: string[] = [];
    for (const bytes of reads) this.push(bytes, events);
    return events;
  }

  /** The data of each event these bytes complete, in order (events whose data is empty are left out), added to `events`. */
  push(bytes: Uint8Array, events: string[] = []): string[] {
    let buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#rest) {
      buffer = Buffer.concat([this.#rest, buffer]);
      this.#rest = undefined;
    }
    const end = buffer.length;
    let start = 0;
    if (this.#afterCr) {
      this.#afterCr = false;
      if (end > 0 && buffer[0] === LF) start = 1;
    }
    // CR line ends are rare: look for them only in reads that have one.
    let cr = buffer.indexOf(CR, start);
    while (start < end) {
      let lineEnd = buffer.indexOf(LF, start);
      let next = lineEnd + 1;
      if (cr !== -1) {
        if (cr < start) cr = buffer.indexOf(CR, start);
        if (cr !== -1 && (lineEnd === -1 || cr < lineEnd)) {
          lineEnd = cr;
          if (cr + 1 === end) {
            next = end;
            this.#afterCr = true;
          } else next = buffer[cr + 1] === LF ? cr + 2 : cr + 1;
        }
      }
      if (lineEnd === -1) break;
      this.#line(buffer, start, lineEnd, events);
      start = next;
    }
    if (start < end) this.#rest = buffer.subarray(start);
    return events;
  }

  #line(buffer: Buffer, start: number, end: number, events: string[]): void {
    if (start === end) {
      if (this.#data) events.push(this.#data);
      this.#data = undefined;
      return;
    }
    // The client's parser decodes field names and values with TextDecoder, which drops a leading byte-order mark.
    const field = isBom(buffer, start, end) ? start + 3 : start;
    // Only `data:` matters here; the client ignores event names, ids and retry hints too.
    if (end - field < 5 || buffer[field] !== 0x64 || buffer[field + 1] !== 0x61 || buffer[field + 2] !== 0x74 || buffer[field + 3] !== 0x61 || buffer[field + 4] !== 0x3a) return;
    let from = field + 5;
    if (from < end && buffer[from] === SPACE) from += 1;
    if (isBom(buffer, from, end)) from += 3;
    const value = buffer.toString("utf8", from, end);
    this.#data = this.#data ? `${this.#data}\n${value}` : value;
  }
}

const isBom = (buffer: Buffer, at: number, end: number) => end - at >= 3 && buffer[at] === 0xef && buffer[at + 1] === 0xbb && buffer[at + 2] === 0xbf;
