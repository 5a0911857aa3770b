/**
 * Writes a stream's SSE frames to the socket. Frames that are ready in the
 * same tick (a remote model's chunks arrive many to a packet and pass
 * through the job in microtasks) are joined into one string and written
 * once at the end of the tick: one chunk and one system call, instead of
 * one chunk (three buffers with chunked encoding) per frame. Nothing waits
 * for more frames: no timer, and the end of the tick comes at once.
 */
import type { ServerResponse } from "node:http";
import { sseData } from "@switchboard/protocol";

export class SseWriter {
  readonly #raw: ServerResponse;
  #text = "";
  #scheduled = false;
  #drain: Promise<void> | undefined;

  constructor(raw: ServerResponse) {
    this.#raw = raw;
  }

  /**
   * Queues one frame of chunk JSON (nothing for undefined). Returns a promise
   * while the socket's buffer is full; await it before producing more.
   */
  push(json: string | undefined): Promise<void> | undefined {
    if (json !== undefined && !this.#raw.destroyed) {
      this.#text += sseData(json);
      if (!this.#scheduled) {
        this.#scheduled = true;
        process.nextTick(flush, this);
      }
    }
    return this.#drain;
  }

  /** Writes what is queued now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#text === "" || this.#raw.destroyed) return;
    const text = this.#text;
    this.#text = "";
    if (this.#raw.write(text) || this.#drain) return;
    this.#drain = new Promise((resolve) => {
      const done = () => {
        this.#raw.off("drain", done);
        this.#raw.off("close", done);
        this.#drain = undefined;
        resolve();
      };
      this.#raw.on("drain", done);
      this.#raw.on("close", done);
    });
  }

  /** Ends the response with what is queued plus `last` (already framed). */
  end(last: string): void {
    const text = this.#text + last;
    this.#text = "";
    this.#raw.end(text);
  }
}

function flush(writer: SseWriter): void {
  writer.flush();
}
