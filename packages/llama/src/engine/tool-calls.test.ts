import { describe, expect, it } from "vitest";
import type { JobEvent } from "@switchboard/protocol";
import { toChatHistory } from "./chat-history.js";
import { ForcedToolCallStream, newToolCallId, toGbnfJsonSchema } from "./tool-calls.js";

describe("toGbnfJsonSchema", () => {
  it("turns anyOf, nullable and definitions into the subset node-llama-cpp reads", () => {
    const translated = toGbnfJsonSchema({
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: {
        city: { type: "string", description: "where" },
        when: { anyOf: [{ type: "string", format: "date" }, { type: "null" }] },
        count: { type: "integer", minimum: 0, maximum: 9007199254740991 },
        place: { $ref: "#/definitions/place" },
      },
      required: ["city"],
      additionalProperties: false,
      definitions: { place: { type: ["object", "null"], properties: { name: { type: "string", maxLength: 5 } } } },
    });
    expect(translated).toEqual({
      type: "object",
      properties: {
        city: { type: "string" },
        when: { oneOf: [{ type: "string", format: "date" }, { type: "null" }] },
        count: { type: "integer" },
        place: { $ref: "#/$defs/d1" },
      },
      $defs: { d1: { oneOf: [{ type: "null" }, { type: "object", properties: { name: { type: "string", maxLength: 5 } } }] } },
    });
  });
});

describe("ForcedToolCallStream", () => {
  it("streams the arguments of a grammar-forced call as tool-call deltas", () => {
    const stream = new ForcedToolCallStream(0);
    const events: JobEvent[] = [];
    for (const chunk of ['{"na', 'me":"get_weather","argu', 'ments":{"ci', 'ty":"Par', 'is"}', "}"]) events.push(...stream.push(chunk));
    events.push(...stream.finish(true));
    const deltas = events.filter((event) => event.type === "tool-call-delta");
    expect(deltas[0]).toMatchObject({ index: 0, toolCallIndex: 0, name: "get_weather", id: expect.stringMatching(/^call_/) });
    expect(deltas.slice(1).every((delta) => delta.id === undefined)).toBe(true);
    expect(deltas.map((delta) => delta.argumentsDelta).join("")).toBe('{"city":"Paris"}');
  });

  it("keeps the last character when the call was cut short", () => {
    const stream = new ForcedToolCallStream(0);
    const events = [...stream.push('{"name":"f","arguments":{"a":"xy'), ...stream.finish(false)];
    expect(events.map((event) => (event.type === "tool-call-delta" ? event.argumentsDelta : "")).join("")).toBe('{"a":"xy');
  });

  it("makes distinct OpenAI-style ids", () => {
    expect(newToolCallId()).toMatch(/^call_[0-9A-Za-z]{24}$/);
    expect(newToolCallId()).not.toBe(newToolCallId());
  });
});

describe("toChatHistory", () => {
  it("pairs tool calls with their results and continues the same model turn", () => {
    const history = toChatHistory([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather?" },
      { role: "assistant", content: "", toolCalls: [{ id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' }] },
      { role: "tool", content: '{"celsius":21}', toolCallId: "call_a" },
    ]);
    expect(history).toEqual([
      { type: "system", text: "Be brief." },
      { type: "user", text: "Weather?" },
      { type: "model", response: [{ type: "functionCall", name: "get_weather", params: { city: "Paris" }, result: { celsius: 21 } }] },
    ]);
  });

  it("ends with an empty model response and places extra instructions after the system messages", () => {
    const history = toChatHistory(
      [
        { role: "system", content: "A" },
        { role: "user", content: "B" },
        { role: "tool", content: "orphan", name: "lookup" },
      ],
      "Call a function.",
    );
    expect(history).toEqual([
      { type: "system", text: "A" },
      { type: "system", text: "Call a function." },
      { type: "user", text: "B" },
      { type: "user", text: "Result of lookup:\norphan" },
      { type: "model", response: [] },
    ]);
  });
});
