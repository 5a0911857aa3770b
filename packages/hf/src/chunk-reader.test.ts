/**
 * The chunk reader must give exactly what `JSON.parse` gives, and throw
 * where it throws, whatever an upstream sends: checked on random streams
 * built to hit its templates and to break them.
 */
import { describe, expect, it, vi } from "vitest";
import { ChunkReader } from "./chunk-reader.js";
import { seededRandom } from "./test-support.js";

/** What `JSON.parse` says about each data string: the value, or that it throws. */
function parsedAsJson(data: string): { value: unknown } | { throws: true } {
  try {
    return { value: JSON.parse(data) };
  } catch {
    return { throws: true };
  }
}

function readAll(datas: string[]): Array<{ value: unknown } | { throws: true }> {
  const reader = new ChunkReader();
  return datas.map((data) => {
    try {
      return { value: reader.read(data) };
    } catch {
      return { throws: true };
    }
  });
}

const head = (id: string) => `{"id":"${id}","object":"chat.completion.chunk","created":1764150000,"model":"acme/chat","choices":[`;
const textChunk = (id: string, raw: string, tail = '"finish_reason":null') => `${head(id)}{"index":0,"delta":{"content":"${raw}"},${tail}}]}`;

describe("the chunk reader", () => {
  it("reads a plain stream as JSON.parse does, text chunks after the first without parsing them", () => {
    const datas = [
      `${head("a")}{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
      ...Array.from({ length: 20 }, (_, index) => textChunk("a", `word${index} `)),
      `${head("a")}{"index":0,"delta":{},"finish_reason":"stop"}]}`,
      `${head("a")}],"usage":{"prompt_tokens":9,"completion_tokens":20,"total_tokens":29}}`,
    ];
    const parse = vi.spyOn(JSON, "parse");
    const read = readAll(datas);
    // The role chunk, the first text chunk (the template), the finish and the usage.
    expect(parse).toHaveBeenCalledTimes(4);
    parse.mockRestore();
    expect(read).toEqual(datas.map(parsedAsJson));
    // The fast path gives fresh objects, like JSON.parse: changing one chunk changes no other.
    const reader = new ChunkReader();
    const [, second, third] = datas.slice(0, 3).map((data) => reader.read(data) as { choices: Array<{ delta: { content: string } }> });
    second!.choices[0]!.delta.content = "changed";
    expect(third!.choices[0]!.delta.content).toBe("word1 ");
  });

  it("reads escapes, quotes, unicode and control characters in the text as JSON.parse does", () => {
    const middles = ["plain", "", 'quote \\" inside', "back\\\\slash", "\\n\\t\\u00e9\\ud83d\\ude00", "ü ✓ 😀", "\\", 'a"', "a\\x", "\u0001", "tab\there", "\\u12", '","finish_reason":"stop', "end\\\\"];
    for (const middle of middles) {
      const datas = [textChunk("b", "first"), textChunk("b", middle), textChunk("b", "last")];
      expect(readAll(datas), middle).toEqual(datas.map(parsedAsJson));
    }
  });

  it("takes no template from chunks that could mislead it", () => {
    const cases: string[][] = [
      // Another `content` key after the delta: JSON.parse keeps the last one.
      [`{"choices":[{"delta":{"content":"a"}}],"x":{"content":"b"}}`, `{"choices":[{"delta":{"content":"c"}}],"x":{"content":"b"}}`],
      // A duplicate key in the delta, and a `content` field of the choice before it.
      [`{"choices":[{"delta":{"content":"a","content":"b"}}]}`, `{"choices":[{"delta":{"content":"a","content":"c"}}]}`],
      [`{"choices":[{"delta":{"content":"a","content":"a"}}]}`, `{"choices":[{"delta":{"content":"b","content":"a"}}]}`],
      [`{"choices":[{"content":"a","delta":{"content":"a"}}]}`, `{"choices":[{"content":"b","delta":{"content":"a"}}]}`],
      // Spaces around the colon, escapes elsewhere, nested objects next to the delta.
      [`{"choices":[{"delta":{"content" : "a"}}]}`, `{"choices":[{"delta":{"content" : "b"}}]}`],
      [`{"id":"x\\"y","choices":[{"delta":{"content":"a"}}]}`, `{"id":"x\\"y","choices":[{"delta":{"content":"b"}}]}`],
      [`{"usage":{"n":1},"choices":[{"delta":{"content":"a"}}]}`, `{"usage":{"n":1},"choices":[{"delta":{"content":"b"}}]}`],
      [`{"choices":[{"logprobs":{"content":[]},"delta":{"content":"a"}}]}`, `{"choices":[{"logprobs":{"content":[]},"delta":{"content":"b"}}]}`],
      // Tool calls, two choices, an error event, garbage.
      [`{"choices":[{"delta":{"content":"a","tool_calls":[]}}]}`, `{"choices":[{"delta":{"content":"b","tool_calls":[]}}]}`],
      [`{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"a"}}]}`, `{"choices":[{"delta":{"content":"b"}},{"delta":{"content":"a"}}]}`],
      [textChunk("c", "a"), `{"error":"boom"}`, textChunk("c", "b")],
      [textChunk("d", "a"), `${head("d")}{"index":0,"delta":{"content":"b`, "<html>", textChunk("d", "c")],
    ];
    for (const datas of cases) expect(readAll(datas), datas.join(" | ")).toEqual(datas.map(parsedAsJson));
  });

  it("agrees with JSON.parse on random streams", () => {
    const next = seededRandom(20261126);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const pieces = ["a", " ", "é", "😀", "\\n", '\\"', "\\\\", "\\u0041", '"', "\\", "\u0007", "}", "content", '"content":"', ",", "]"];
    const ids = ["x", "y"];
    const tails = ['"finish_reason":null', '"logprobs":null,"finish_reason":null', '"finish_reason":"stop"'];
    for (let round = 0; round < 300; round++) {
      const datas: string[] = [];
      for (let index = 0; index < 12; index++) {
        const text = Array.from({ length: Math.floor(next() * 5) }, () => pick(pieces)).join("");
        const roll = next();
        if (roll < 0.75) datas.push(textChunk(pick(ids), text, pick(tails)));
        else if (roll < 0.85) datas.push(`${head(pick(ids))}{"index":0,"delta":{"role":"assistant","content":"${text}"},"finish_reason":null}]}`);
        else if (roll < 0.95) datas.push(`{"choices":[{"delta":{"content":"${text}"}}]${pick(["", ',"usage":null', ',"usage":{"total_tokens":1}'])}}`);
        else datas.push(text);
      }
      expect(readAll(datas), datas.join("\n")).toEqual(datas.map(parsedAsJson));
    }
  });
});
