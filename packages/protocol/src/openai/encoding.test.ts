import { describe, expect, it } from "vitest";
import { Compile } from "typebox/compile";
import { joinTextDeltas, type JobEvent, type TokenLogprob } from "../jobs.js";
import { ChatCompletionChunkSchema, ChatCompletionResponseSchema } from "./chat-completion-schema.js";
import { ChatCompletionAccumulator, ChatStreamEncoder } from "./chat-encoding.js";
import { CompletionChunkSchema, CompletionResponseSchema } from "./completion-schema.js";
import { CompletionAccumulator, CompletionStreamEncoder } from "./completion-encoding.js";
import { EmbeddingAccumulator, encodeVectorBase64 } from "./embedding-encoding.js";
import { SSE_DONE, sseData, sseError } from "./sse.js";
import { invalidRequest } from "../errors.js";

const identity = { id: "chatcmpl-abc", model: "org/model:q4", created: 1_700_000_000, systemFingerprint: "fp_test" };
const chunkCheck = Compile(ChatCompletionChunkSchema);
const completionChunkCheck = Compile(CompletionChunkSchema);

function encodeAll(encoder: { encode(event: JobEvent): string | undefined; end(): string | undefined }, events: JobEvent[]) {
  const texts = events.map((event) => encoder.encode(event)).filter((text) => text !== undefined);
  const last = encoder.end();
  if (last !== undefined) texts.push(last);
  return texts.map((text) => JSON.parse(text!));
}

const textEvents: JobEvent[] = [
  { type: "accepted", jobId: "j", model: "org/model:q4", promptTokens: 11 },
  { type: "text-delta", index: 0, text: 'He said "hi"\n' },
  { type: "text-delta", index: 0, text: "" },
  { type: "text-delta", index: 0, text: "ünïcode ✓" },
  { type: "finish", index: 0, finishReason: "stop", completionTokens: 4 },
];

describe("ChatStreamEncoder", () => {
  it("opens with a role-only delta, escapes text, skips empty deltas and ends with a finish chunk", () => {
    const chunks = encodeAll(new ChatStreamEncoder({ ...identity, includeUsage: false }), textEvents);
    expect(chunks).toHaveLength(4);
    for (const chunk of chunks) {
      expect(chunkCheck.Check(chunk), JSON.stringify(chunk)).toBe(true);
      expect(chunk).toMatchObject({ id: "chatcmpl-abc", object: "chat.completion.chunk", created: identity.created, model: "org/model:q4", system_fingerprint: "fp_test" });
      expect(chunk).not.toHaveProperty("usage");
    }
    expect(chunks[0].choices).toEqual([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]);
    expect(chunks[1].choices[0].delta).toEqual({ content: 'He said "hi"\n' });
    expect(chunks[2].choices[0].delta).toEqual({ content: "ünïcode ✓" });
    expect(chunks[3].choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "stop" });
  });

  it("with include_usage puts usage: null on every chunk and ends with a usage chunk whose choices are empty", () => {
    const chunks = encodeAll(new ChatStreamEncoder({ ...identity, includeUsage: true }), textEvents);
    expect(chunks).toHaveLength(5);
    for (const chunk of chunks) expect(chunkCheck.Check(chunk)).toBe(true);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.usage).toBeNull();
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 } });
  });

  it("encodes tool-call deltas with id, type and name only on each call's first delta", () => {
    const events: JobEvent[] = [
      { type: "accepted", jobId: "j", model: "m", promptTokens: 3 },
      { type: "tool-call-delta", index: 0, toolCallIndex: 0, id: "call_1", name: "get_weather", argumentsDelta: '{"city":' },
      { type: "tool-call-delta", index: 0, toolCallIndex: 0, argumentsDelta: '"Oslo"}' },
      { type: "tool-call-delta", index: 0, toolCallIndex: 1, id: "call_2", name: "get_time", argumentsDelta: "{}" },
      { type: "finish", index: 0, finishReason: "tool_calls", completionTokens: 9 },
    ];
    const chunks = encodeAll(new ChatStreamEncoder({ ...identity, includeUsage: false }), events);
    for (const chunk of chunks) expect(chunkCheck.Check(chunk)).toBe(true);
    expect(chunks[1].choices[0].delta.tool_calls).toEqual([
      { index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":' } },
    ]);
    expect(chunks[2].choices[0].delta.tool_calls).toEqual([{ index: 0, function: { arguments: '"Oslo"}' } }]);
    expect(chunks[3].choices[0].delta.tool_calls[0]).toMatchObject({ index: 1, id: "call_2", type: "function" });
    expect(chunks[4].choices[0].finish_reason).toBe("tool_calls");
  });

  it("puts the role on the first delta of a choice that had no role chunk", () => {
    const encoder = new ChatStreamEncoder({ ...identity, includeUsage: false });
    encoder.encode({ type: "accepted", jobId: "j", model: "m", promptTokens: 1 });
    const second = JSON.parse(encoder.encode({ type: "text-delta", index: 1, text: "x" })!);
    expect(second.choices[0]).toMatchObject({ index: 1, delta: { role: "assistant", content: "x" } });
    const again = JSON.parse(encoder.encode({ type: "text-delta", index: 1, text: "y" })!);
    expect(again.choices[0].delta).toEqual({ content: "y" });
  });
});

describe("ChatCompletionAccumulator", () => {
  it("builds a chat.completion with refusal and logprobs null and exact usage", () => {
    const accumulator = new ChatCompletionAccumulator(identity);
    for (const event of textEvents) accumulator.add(event);
    const response = accumulator.toResponse();
    expect(Compile(ChatCompletionResponseSchema).Check(response)).toBe(true);
    expect(response).toEqual({
      id: "chatcmpl-abc",
      object: "chat.completion",
      created: identity.created,
      model: "org/model:q4",
      system_fingerprint: "fp_test",
      choices: [{ index: 0, message: { role: "assistant", content: 'He said "hi"\nünïcode ✓', refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 },
    });
  });

  it("joins tool-call argument deltas and sets content null for a tools-only turn", () => {
    const accumulator = new ChatCompletionAccumulator(identity);
    accumulator.add({ type: "accepted", jobId: "j", model: "m", promptTokens: 3 });
    accumulator.add({ type: "tool-call-delta", index: 0, toolCallIndex: 0, id: "call_1", name: "f", argumentsDelta: '{"a":' });
    accumulator.add({ type: "tool-call-delta", index: 0, toolCallIndex: 0, argumentsDelta: "1}" });
    accumulator.add({ type: "finish", index: 0, finishReason: "tool_calls", completionTokens: 5 });
    const message = accumulator.toResponse().choices[0]!.message;
    expect(message).toEqual({
      role: "assistant",
      content: null,
      refusal: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
    });
  });
});

describe("log probabilities", () => {
  const token = (text: string, logprob: number): TokenLogprob => ({ token: text, logprob, bytes: [...Buffer.from(text)], top_logprobs: [] });

  it("ride on their delta's chunk, also when the token has no text, and add up in the response", () => {
    const events: JobEvent[] = [
      { type: "accepted", jobId: "j", model: "m", promptTokens: 3 },
      { type: "text-delta", index: 0, text: "Hi", logprobs: [token("Hi", -0.5)] },
      { type: "text-delta", index: 0, text: "", logprobs: [token("", -2)] },
      { type: "text-delta", index: 0, text: "!" },
      { type: "finish", index: 0, finishReason: "stop", completionTokens: 3 },
    ];
    const chunks = encodeAll(new ChatStreamEncoder({ ...identity, includeUsage: false }), events);
    for (const chunk of chunks) expect(chunkCheck.Check(chunk)).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.logprobs)).toEqual([
      null,
      { content: [token("Hi", -0.5)], refusal: null },
      { content: [token("", -2)], refusal: null },
      null,
      null,
    ]);
    const accumulator = new ChatCompletionAccumulator(identity);
    for (const event of events) accumulator.add(event);
    const response = accumulator.toResponse();
    expect(Compile(ChatCompletionResponseSchema).Check(response)).toBe(true);
    expect(response.choices[0]!.logprobs).toEqual({ content: [token("Hi", -0.5), token("", -2)], refusal: null });
  });

  it("stay in order when a transport joins two deltas", () => {
    const first = { type: "text-delta" as const, index: 1, text: "a", logprobs: [token("a", -1)] };
    expect(joinTextDeltas(first, { type: "text-delta", index: 1, text: "b", logprobs: [token("b", -2)] })).toEqual({
      type: "text-delta",
      index: 1,
      text: "ab",
      logprobs: [token("a", -1), token("b", -2)],
    });
    expect(joinTextDeltas({ type: "text-delta", index: 0, text: "a" }, { type: "text-delta", index: 0, text: "b", logprobs: [token("b", -2)] }).logprobs).toEqual([token("b", -2)]);
    expect(joinTextDeltas({ type: "text-delta", index: 0, text: "a" }, { type: "text-delta", index: 0, text: "b" })).toEqual({ type: "text-delta", index: 0, text: "ab" });
    // The first delta is not changed.
    expect(first.logprobs).toHaveLength(1);
  });
});

describe("text completion encoding", () => {
  const events: JobEvent[] = [
    { type: "accepted", jobId: "j", model: "m", promptTokens: 6 },
    { type: "text-delta", index: 0, text: "one" },
    { type: "finish", index: 0, finishReason: "length", completionTokens: 1 },
    { type: "text-delta", index: 1, text: "two" },
    { type: "finish", index: 1, finishReason: "stop", completionTokens: 1 },
  ];

  it("streams text_completion chunks per prompt index, then usage", () => {
    const chunks = encodeAll(new CompletionStreamEncoder({ ...identity, id: "cmpl-abc", includeUsage: true }), events);
    for (const chunk of chunks) expect(completionChunkCheck.Check(chunk), JSON.stringify(chunk)).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.text)).toEqual(["one", "", "two", "", undefined]);
    expect(chunks[1].choices[0].finish_reason).toBe("length");
    expect(chunks.at(-1).usage).toEqual({ prompt_tokens: 6, completion_tokens: 2, total_tokens: 8 });
  });

  it("accumulates one choice per prompt, even a prompt that produced nothing", () => {
    const accumulator = new CompletionAccumulator({ ...identity, id: "cmpl-abc" }, 3);
    for (const event of events) accumulator.add(event);
    const response = accumulator.toResponse();
    expect(Compile(CompletionResponseSchema).Check(response)).toBe(true);
    expect(response.choices.map((choice) => [choice.index, choice.text, choice.finish_reason])).toEqual([
      [0, "one", "length"],
      [1, "two", "stop"],
      [2, "", "stop"],
    ]);
  });

  it("keeps a choice past the prompt count (n per prompt) that produced no text", () => {
    const accumulator = new CompletionAccumulator({ ...identity, id: "cmpl-abc" }, 1);
    accumulator.add({ type: "accepted", jobId: "j", model: "m", promptTokens: 4 });
    accumulator.add({ type: "text-delta", index: 0, text: "one" });
    accumulator.add({ type: "finish", index: 0, finishReason: "stop", completionTokens: 2 });
    accumulator.add({ type: "finish", index: 1, finishReason: "stop", completionTokens: 1 });
    const response = accumulator.toResponse();
    expect(response.choices.map((choice) => [choice.index, choice.text])).toEqual([
      [0, "one"],
      [1, ""],
    ]);
    // Prompt tokens are counted once for all choices; completion tokens add up.
    expect(response.usage).toEqual({ prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
  });
});

describe("embedding encoding", () => {
  it("base64 is little-endian float32 of the same vector", () => {
    const vector = [0.25, -1.5, 3.0000001, 0];
    const bytes = Buffer.from(encodeVectorBase64(vector), "base64");
    const decoded = Array.from({ length: vector.length }, (_, index) => bytes.readFloatLE(index * 4));
    expect(decoded).toEqual(Array.from(Float32Array.from(vector)));
  });

  it("answers one entry per input with usage", () => {
    const accumulator = new EmbeddingAccumulator("m", "float");
    accumulator.add({ type: "accepted", jobId: "j", model: "m", promptTokens: 4 });
    accumulator.add({ type: "embeddings", vectors: [[1, 2], [3, 4]] });
    expect(accumulator.toResponse()).toEqual({
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: [1, 2] },
        { object: "embedding", index: 1, embedding: [3, 4] },
      ],
      model: "m",
      usage: { prompt_tokens: 4, total_tokens: 4 },
    });
  });
});

describe("SSE framing", () => {
  it("frames data, errors and the end marker", () => {
    expect(sseData('{"a":1}')).toBe('data: {"a":1}\n\n');
    expect(SSE_DONE).toBe("data: [DONE]\n\n");
    expect(sseError(invalidRequest("bad", "x", "c"))).toBe('data: {"error":{"message":"bad","type":"invalid_request_error","param":"x","code":"c"}}\n\n');
  });
});
