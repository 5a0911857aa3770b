/**
 * OpenAI's `logit_bias` against the real embedded server: the generated tiny
 * model (random weights, real llama.cpp) read by the official `openai`
 * client. Token ids are the model's own, taken from its GGUF vocabulary.
 */
import type OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTestModel, readGgufHeader } from "@switchboard/llama";
import { startTinyServer, type TinyServer } from "./tiny-server.js";

const MODEL = "tiny-bias";

let tiny: TinyServer;
let client: OpenAI;
/** The model's vocabulary: token id → the text the token writes. */
let vocabulary: readonly string[];

beforeAll(async () => {
  tiny = await startTinyServer(MODEL);
  client = tiny.client;
  const tokens = (await readGgufHeader(await ensureTestModel("tiny", tiny.modelsDir))).metadata.get("tokenizer.ggml.tokens")?.value;
  const pieces = typeof tokens === "object" && tokens !== null && "values" in tokens ? ((tokens.values ?? []) as string[]) : [];
  vocabulary = pieces.map(tokenText);
}, 60_000);

afterAll(async () => {
  await tiny?.close();
});

/** The text a SentencePiece token writes: `<0x78>` is the byte "x" (ASCII only here), `▁` a space. */
function tokenText(piece: string): string {
  const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
  if (byte) return Number.parseInt(byte[1]!, 16) < 0x80 ? String.fromCharCode(Number.parseInt(byte[1]!, 16)) : "";
  // Control tokens (`<s>`, `<|im_end|>`) write nothing.
  if (/^<.+>$/.test(piece)) return "";
  return piece.replaceAll("\u2581", " ");
}

const messages = [{ role: "user" as const, content: "Name a colour." }];
const tokenOf = (text: string) => {
  const id = vocabulary.indexOf(text);
  expect(id, `token '${text}' in the vocabulary`).toBeGreaterThanOrEqual(0);
  return id;
};

describe("logit_bias on a local model", () => {
  it("+100 on one token id makes every chat choice (n = 2) that token, streamed or not", async () => {
    const logit_bias = { [tokenOf("x")]: 100 };
    const completion = await client.chat.completions.create({ model: MODEL, messages, temperature: 1, seed: 3, max_tokens: 8, n: 2, logit_bias });
    expect(completion.choices.map((choice) => choice.message.content)).toEqual(["xxxxxxxx", "xxxxxxxx"]);
    expect(completion.choices.map((choice) => choice.finish_reason)).toEqual(["length", "length"]);

    const stream = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 8, stream: true, logit_bias });
    let streamed = "";
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
    expect(streamed).toBe("xxxxxxxx");
  });

  it("-100 bans: a text completion with every token spelling its plain answer's first character banned never writes it", async () => {
    const complete = (logit_bias?: Record<string, number>) =>
      client.completions.create({ model: MODEL, prompt: "The weather", temperature: 0, max_tokens: 10, ...(logit_bias ? { logit_bias } : {}) });
    const plain = (await complete()).choices[0]!.text;
    const first = plain.trim()[0]!;
    const banned = vocabulary.flatMap((token, id) => (token.includes(first) ? [[id, -100] as const] : []));
    const biased = (await complete(Object.fromEntries(banned))).choices[0]!.text;
    expect(biased).not.toBe(plain);
    expect(biased).not.toContain(first);
    // An empty map is no bias.
    expect((await complete({})).choices[0]!.text).toBe(plain);
  });
});

describe("logit_bias the server refuses", () => {
  const refusal = (request: Promise<unknown>) => request.then(() => expect.fail("expected a 400"), (error: unknown) => error as InstanceType<typeof OpenAI.APIError>);

  it("a token id outside the model's vocabulary is a 400 naming that entry", async () => {
    const outside = vocabulary.length;
    expect(outside).toBeGreaterThan(0);
    const error = await refusal(client.chat.completions.create({ model: MODEL, messages, logit_bias: { [tokenOf("x")]: 1, [outside]: -100 } }));
    expect(error.status).toBe(400);
    expect(error.param).toBe(`logit_bias.${outside}`);
    expect(error.message).toMatch(/not in this model's vocabulary/);
    const completion = await refusal(client.completions.create({ model: MODEL, prompt: "a", logit_bias: { "4000000000": 1 } }));
    expect(completion.param).toBe("logit_bias.4000000000");
  });

  it("an out-of-range bias or a key that is not a token id is a 400 naming that entry", async () => {
    const range = await refusal(client.chat.completions.create({ model: MODEL, messages, logit_bias: { "5": 150 } }));
    expect([range.status, range.param]).toEqual([400, "logit_bias.5"]);
    const key = await refusal(client.chat.completions.create({ model: MODEL, messages, logit_bias: { x: 1 } as unknown as Record<string, number> }));
    expect([key.status, key.param]).toEqual([400, "logit_bias.x"]);
  });

  it("logit_bias on the router is a 400 naming logit_bias", async () => {
    const error = await refusal(client.chat.completions.create({ model: "router", messages, logit_bias: { "5": 1 } }));
    expect(error.status).toBe(400);
    expect(error.param).toBe("logit_bias");
    expect(error.message).toMatch(/router does not take 'logit_bias'/);
  });
});
