/**
 * OpenAI-shaped chat messages → node-llama-cpp chat history, so the model's
 * own chat wrapper renders them (its template, its function-call syntax).
 */
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from "node-llama-cpp";
import type { JobChatMessage } from "@switchboard/protocol";

/**
 * Converts job messages to a history that ends with the model response to
 * generate. An assistant message's tool calls become function calls whose
 * results are the `tool` messages that answer them, and the model's answer
 * after those results continues the same response, as node-llama-cpp models a
 * function-calling turn. A `tool` message that answers no earlier call is kept
 * as user text rather than lost.
 */
export function toChatHistory(messages: readonly JobChatMessage[], extraSystemText?: string): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  // Calls still waiting for their tool result, by call id.
  const openCalls = new Map<string, ChatModelFunctionCall>();

  for (const message of messages) {
    switch (message.role) {
      case "system":
        history.push({ type: "system", text: message.content });
        break;
      case "user":
        history.push({ type: "user", text: message.content });
        break;
      case "assistant": {
        const continued = continuesFunctionCalls(history);
        const response: ChatModelResponse["response"] = continued ? continued.response : [];
        if (message.content) response.push(message.content);
        for (const call of message.toolCalls ?? []) {
          const functionCall: ChatModelFunctionCall = {
            type: "functionCall",
            name: call.name,
            params: parseJsonOr(call.arguments, call.arguments),
            result: undefined,
          };
          openCalls.set(call.id, functionCall);
          response.push(functionCall);
        }
        if (!continued) history.push({ type: "model", response });
        break;
      }
      case "tool": {
        const call = message.toolCallId === undefined ? undefined : openCalls.get(message.toolCallId);
        if (call) {
          call.result = parseJsonOr(message.content, message.content);
          openCalls.delete(message.toolCallId!);
        } else {
          const label = message.name ? `Result of ${message.name}` : "Tool result";
          history.push({ type: "user", text: `${label}:\n${message.content}` });
        }
        break;
      }
    }
  }

  if (extraSystemText) {
    // After the caller's own system messages, like node-llama-cpp places function docs.
    const firstNonSystem = history.findIndex((item) => item.type !== "system");
    history.splice(firstNonSystem < 0 ? history.length : firstNonSystem, 0, { type: "system", text: extraSystemText });
  }
  if (!continuesFunctionCalls(history)) history.push({ type: "model", response: [] });
  return history;
}

/** The last item, when it is a model response that ended by calling functions. */
function continuesFunctionCalls(history: ChatHistoryItem[]): ChatModelResponse | undefined {
  const last = history.at(-1);
  if (last?.type !== "model") return undefined;
  const lastPart = last.response.at(-1);
  return typeof lastPart === "object" && lastPart.type === "functionCall" ? last : undefined;
}

function parseJsonOr(text: string, fallback: unknown): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}
