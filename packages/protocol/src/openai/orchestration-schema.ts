/**
 * `/v1/orchestrations`: router runs (plan, select, execute, respond) as
 * resources. A run record is the router's JSON as it is (camelCase fields),
 * described loosely here: its full shape is the planner's `RunRecord`.
 */
import { Type, type Static } from "typebox";
import { ChatMessageSchema } from "./chat-completion-schema.js";

const PlanTaskSchema = Type.Object(
  {
    id: Type.Integer({ minimum: 0, description: "The task's position in the plan: 0, 1, ..." }),
    task: Type.String({ description: "A kebab-case task name (`image-to-text`) that some model of the catalog serves now." }),
    dep: Type.Array(Type.Integer({ minimum: -1 }), { description: "`[-1]`, or the ids of earlier tasks whose outputs this one uses." }),
    args: Type.Record(Type.String(), Type.String(), {
      description: "The task's inputs by name: literal text, `<GENERATED>-k` (an output of task k, which must be in `dep`) or `<INPUT>-n` (the n-th image or audio of the request).",
    }),
  },
  { description: "One task of a plan, in HuggingGPT's format." },
);

export const OrchestrationRequestSchema = Type.Object(
  {
    model: Type.Optional(Type.String({ description: "`router` or one of its aliases (`hugginggpt`); the default." })),
    messages: Type.Array(ChatMessageSchema, {
      minItems: 1,
      description: "The conversation, as for chat completions. `image_url` (data URL or http(s)) and `input_audio` parts become the run's inputs `<INPUT>-0`, `<INPUT>-1`, ...",
    }),
    dry_run: Type.Optional(Type.Boolean({ description: "Plan and select models only; nothing is executed and no answer is written." })),
    plan: Type.Optional(
      Type.Array(PlanTaskSchema, { description: "A plan to execute instead of planning (for example one a dry run made, edited). Validated first: a 400 whose `param` names the bad node." }),
    ),
    stream: Type.Optional(Type.Boolean({ description: "Stream the run's events as server-sent events (`data: {event}`), ending with `data: [DONE]`." })),
  },
  { $id: "CreateOrchestrationRequest", description: "Start a router run. Unknown fields are ignored." },
);
export type OrchestrationRequest = Static<typeof OrchestrationRequestSchema>;

const looseObject = (description: string) => Type.Object({}, { additionalProperties: true, description });

const orchestrationProperties = {
    object: Type.Literal("orchestration"),
    id: Type.String({ description: "The run's id; `GET /v1/orchestrations/{id}` reads it back while it runs and after." }),
    requestId: Type.String({ description: "The request's `x-request-id`: it is in every log line and job of the run." }),
    status: Type.Enum(["running", "planned", "completed", "cancelled", "failed"], {
      description: "`planned`: a dry run ended after selection. `completed`: the answer is written (some tasks may have failed: see `tasks`). `failed`: no answer could be written (`error` says why).",
    }),
    createdAt: Type.Integer({ description: "Epoch milliseconds." }),
    finishedAt: Type.Optional(Type.Integer({ description: "Epoch milliseconds." })),
    dryRun: Type.Boolean(),
    inputs: Type.Array(looseObject("A file of the request: `{id: \"<INPUT>-n\", modality, source, mimeType}`.")),
    plan: Type.Array(PlanTaskSchema),
    planner: looseObject("How the plan was made: `source` (local, remote, client), `model`, LLM `calls`, rejected plans, the fallback reason."),
    replans: Type.Integer({ minimum: 0 }),
    selections: Type.Array(looseObject("The model chosen for one task: `taskId`, `task`, `model`, `backend`, `reason`, `byLlm`, ranked `candidates`, `fallbackModels`.")),
    tasks: Type.Array(looseObject("One task's run: `status`, `model`, `inputs`, `output`, `artifacts` (by reference), `startedAt`, `finishedAt`, `durationMs`, `error`, `reason`.")),
    answer: Type.String({ description: "The answer the responder wrote." }),
    timings: looseObject("Milliseconds per stage (`planMs`, `selectMs`, `executeMs`, `respondMs`), `totalMs`, model time `modelMs` and the loop's own `overheadMs`."),
    error: Type.Optional(looseObject("Why the run failed (an OpenAI error object).")),
};

export const OrchestrationSchema = Type.Object(orchestrationProperties, { $id: "Orchestration", additionalProperties: true, description: "A router run: the plan, the models chosen and why, each task's inputs, outputs, timings and errors, and the answer." },
);

export const OrchestrationListSchema = Type.Object(
  { object: Type.Literal("list"), data: Type.Array(Type.Object(orchestrationProperties, { additionalProperties: true })) },
  { $id: "OrchestrationList", description: "Recent runs, newest first." },
);

export const OrchestrationStreamEventSchema = Type.Object(
  {
    type: Type.Enum(["run-started", "plan", "selection", "task-started", "task-finished", "answer-delta", "run"], {
      description:
        "`run-started`; `plan` (the plan, its source, re-plans); `selection` (one task's model and reason); `task-started`, `task-finished` (status, duration, error); `answer-delta` (`text`: the next piece of the answer); `run` (`run`: the final record).",
    }),
    runId: Type.String(),
  },
  {
    $id: "OrchestrationStreamEvent",
    additionalProperties: true,
    description: "One server-sent event of a streamed run (`data: {event}`); the stream ends with `data: [DONE]`, or with `data: {\"error\": {...}}` when the run failed.",
  },
);
