/**
 * Runs the OpenAI API contract suite against the gateway on a real port, in
 * front of a scripted backend that plays a well-behaved engine: it streams
 * one piece per event-loop turn, stops at max_tokens or on abort, answers
 * json_schema and tools with JSON built from the schema, and refuses prompts
 * longer than its context. This checks the gateway's wire behaviour and the
 * suite itself; the embedded app reruns the suite against the real engine.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { contextLengthExceeded, invalidRequest, type Job, type JobContext, type JobEvent } from "@switchboard/protocol";
import { defineApiContractSuite } from "./api-contract.js";
import { buildTestGateway, testConfig, testModel, TEST_MODEL } from "./gateway-harness.js";
import { ScriptedBackend } from "./scripted-backend.js";

const CONTEXT_CHARACTERS = 8_000;

/** A value that satisfies the simple schemas the suite sends (enums, booleans, integers, objects). */
function exampleOf(schema: Record<string, unknown>): unknown {
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  switch (schema.type) {
    case "object":
      return Object.fromEntries(
        Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>).map(([key, value]) => [key, exampleOf(value)]),
      );
    case "integer":
    case "number":
      return 3;
    case "boolean":
      return true;
    case "string":
      return "text";
    case "array":
      return [];
    default:
      return null;
  }
}

/** Splits text into pieces of at most 3 characters, like tokens. */
const pieces = (text: string) => text.match(/[\s\S]{1,3}/g) ?? [];

async function* scriptedEngine(job: Job, context: JobContext): AsyncIterable<JobEvent> {
  if (job.kind === "task" || job.kind === "orchestration") {
    yield { type: "error", error: invalidRequest("The scripted engine runs no tasks or router runs.", "model").toPayload() };
    return;
  }
  if (job.kind === "embedding") {
    yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: job.input.join("").length };
    yield {
      type: "embeddings",
      vectors: job.input.map((text) => Array.from({ length: 8 }, (_, index) => Math.sin(text.length * 0.37 + index * 1.1) / 3)),
    };
    return;
  }
  const prompts = job.kind === "chat" ? [job.messages.map((message) => message.content).join("\n")] : job.prompts;
  const promptCharacters = prompts.reduce((sum, prompt) => sum + prompt.length, 0);
  if (promptCharacters > CONTEXT_CHARACTERS) {
    yield { type: "error", error: contextLengthExceeded(promptCharacters, CONTEXT_CHARACTERS, job.maxTokens).toPayload() };
    return;
  }
  yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: Math.max(1, promptCharacters) };

  for (let index = 0; index < prompts.length; index++) {
    const forcedTool =
      job.kind === "chat" && job.tools !== undefined && job.toolChoice !== undefined && job.toolChoice !== "auto" && job.toolChoice !== "none"
        ? typeof job.toolChoice === "object"
          ? job.tools.find((tool) => tool.name === (job.toolChoice as { name: string }).name)
          : job.tools[0]
        : undefined;
    const output =
      forcedTool !== undefined
        ? JSON.stringify(exampleOf(forcedTool.parameters ?? { type: "object" }))
        : job.kind === "chat" && job.responseFormat?.type === "json_schema"
          ? JSON.stringify(exampleOf(job.responseFormat.schema))
          : "Once upon a time there was a gateway that streamed tokens one by one until it was told to stop. ".repeat(20);
    let produced = 0;
    let finishReason: "stop" | "length" | "tool_calls" = forcedTool ? "tool_calls" : "stop";
    for (const piece of pieces(output)) {
      if (produced >= job.maxTokens) {
        finishReason = "length";
        break;
      }
      await nextTurn();
      if (context.signal.aborted) return;
      produced++;
      yield forcedTool
        ? { type: "tool-call-delta", index, toolCallIndex: 0, argumentsDelta: piece, ...(produced === 1 ? { id: `call_${job.id}`, name: forcedTool.name } : {}) }
        : { type: "text-delta", index, text: piece };
    }
    yield { type: "finish", index, finishReason, completionTokens: produced };
  }
}

defineApiContractSuite("gateway + scripted backend", async () => {
  const config = testConfig({ models: [testModel({ maxTokens: 512, maxWaiting: 16 })], server: { bodyLimitBytes: 4 * 1024 * 1024 } });
  const backend = new ScriptedBackend({ models: [TEST_MODEL], script: scriptedEngine });
  const gateway = await buildTestGateway({ config, backend });
  const baseURL = await gateway.app.listen({ port: 0, host: "127.0.0.1" });
  return { baseURL, modelId: TEST_MODEL, close: () => gateway.close() };
});
