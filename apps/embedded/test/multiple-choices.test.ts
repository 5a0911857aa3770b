/**
 * OpenAI's `n` against the real embedded server: the generated tiny model
 * (random weights, real llama.cpp) answers several choices per request, read
 * by the official `openai` client and as raw server-sent events; the router
 * keeps to one.
 */
import type OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTinyServer, type TinyServer } from "./tiny-server.js";

const MODEL = "tiny-choices";

let tiny: TinyServer;
let baseUrl: string;
let client: OpenAI;

beforeAll(async () => {
  tiny = await startTinyServer(MODEL);
  ({ baseUrl, client } = tiny);
}, 60_000);

afterAll(async () => {
  await tiny?.close();
});

const messages = [{ role: "user" as const, content: "Name a colour." }];
const chat = (seed: number, n?: number) =>
  client.chat.completions.create({ model: MODEL, messages, temperature: 1, seed, max_tokens: 12, ...(n === undefined ? {} : { n }) });

describe("n choices on a local model", () => {
  it("answers n chat choices: indexed, each finished, prompt tokens once and completion tokens summed", async () => {
    const several = await chat(5, 3);
    expect(several.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    for (const choice of several.choices) {
      expect(["stop", "length"]).toContain(choice.finish_reason);
      expect(typeof choice.message.content).toBe("string");
    }
    // Choice i is the single answer with seed + i.
    const singles = await Promise.all([5, 6, 7].map((seed) => chat(seed)));
    expect(several.choices.map((choice) => choice.message.content)).toEqual(singles.map((single) => single.choices[0]!.message.content));
    expect(several.usage!.prompt_tokens).toBe(singles[0]!.usage!.prompt_tokens);
    const summed = singles.reduce((sum, single) => sum + single.usage!.completion_tokens, 0);
    expect(several.usage).toMatchObject({ completion_tokens: summed, total_tokens: several.usage!.prompt_tokens + summed });
  });

  it("repeats a seeded request with n, and its choice 1 is the single answer with seed + 1", async () => {
    const [first, second, next] = await Promise.all([chat(40, 2), chat(40, 2), chat(41)]);
    const texts = (completion: OpenAI.ChatCompletion) => completion.choices.map((choice) => choice.message.content);
    expect(texts(second)).toEqual(texts(first));
    expect(first.choices[1]!.message.content).toBe(next.choices[0]!.message.content);
  });

  it("streams n chat choices: role once per index, a finish per index, one usage chunk, then [DONE]", async () => {
    const response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages, temperature: 1, seed: 9, max_tokens: 12, n: 2, stream: true, stream_options: { include_usage: true } }),
    });
    expect(response.status).toBe(200);
    const frames = (await response.text()).trim().split("\n\n").map((frame) => frame.replace(/^data: /, ""));
    expect(frames.at(-1)).toBe("[DONE]");
    const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame));
    const choices = chunks.flatMap((chunk) => chunk.choices as { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[]);
    for (const index of [0, 1]) {
      const own = choices.filter((choice) => choice.index === index);
      expect(own.filter((choice) => choice.delta.role === "assistant")).toHaveLength(1);
      expect(own.filter((choice) => choice.finish_reason !== null)).toHaveLength(1);
    }
    const usageChunks = chunks.filter((chunk) => chunk.usage !== null);
    expect(usageChunks).toHaveLength(1);
    expect(usageChunks[0]).toBe(chunks.at(-1));
    expect(usageChunks[0].choices).toEqual([]);

    // The official client reads the same stream: the texts match the non-streamed answer.
    const stream = await client.chat.completions.create({ model: MODEL, messages, temperature: 1, seed: 9, max_tokens: 12, n: 2, stream: true });
    const texts = ["", ""];
    const finished: string[] = [];
    for await (const chunk of stream)
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finished[choice.index] = choice.finish_reason;
      }
    expect(finished).toHaveLength(2);
    const collected = await chat(9, 2);
    expect(texts).toEqual(collected.choices.map((choice) => choice.message.content));
  });

  it("answers a 2-prompt completion with n=2 as 4 choices, prompt by prompt", async () => {
    const prompts = ["The weather", "Once upon"];
    const complete = (prompt: string | string[], seed: number, n?: number) =>
      client.completions.create({ model: MODEL, prompt, temperature: 1, seed, max_tokens: 8, ...(n === undefined ? {} : { n }) });
    const several = await complete(prompts, 3, 2);
    expect(several.choices.map((choice) => choice.index)).toEqual([0, 1, 2, 3]);
    const expected = await Promise.all([complete(prompts[0]!, 3), complete(prompts[0]!, 4), complete(prompts[1]!, 3), complete(prompts[1]!, 4)]);
    expect(several.choices.map((choice) => choice.text)).toEqual(expected.map((single) => single.choices[0]!.text));
    // Each prompt's tokens count once, however many choices it has.
    expect(several.usage!.prompt_tokens).toBe(expected[0]!.usage!.prompt_tokens + expected[2]!.usage!.prompt_tokens);
  });
});

describe("n the server refuses", () => {
  const refusal = (request: Promise<unknown>) => request.then(() => expect.fail("expected a 400"), (error: unknown) => error as InstanceType<typeof OpenAI.APIError>);

  it("n above 8 on a local model is a 400 naming n", async () => {
    const error = await refusal(chat(1, 9));
    expect(error.status).toBe(400);
    expect(error.param).toBe("n");
  });

  it("n > 1 on the router is a 400 naming n: it writes one answer", async () => {
    const error = await refusal(client.chat.completions.create({ model: "router", messages, n: 2 }));
    expect(error.status).toBe(400);
    expect(error.param).toBe("n");
    expect(error.message).toMatch(/one answer/);
  });
});
