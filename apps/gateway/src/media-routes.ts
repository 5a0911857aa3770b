/**
 * OpenAI's media routes, each mapped onto a task of the remote specialists:
 *
 * - `POST /v1/images/generations` → text-to-image; `response_format` `url`
 *   (a signed, expiring artifact URL; the default) or `b64_json`;
 * - `POST /v1/audio/speech` → text-to-speech; the answer is the audio file,
 *   with the model's own format as its content type;
 * - `POST /v1/audio/transcriptions` → automatic-speech-recognition, from a
 *   multipart upload; `response_format` `json`, `text` or `verbose_json`.
 *
 * Each is a task job through the dispatcher; upstream faults arrive as
 * GatewayErrors (502/503/504 with Retry-After) and leave as OpenAI errors.
 */
import type { FastifyInstance } from "fastify";
import {
  GatewayError,
  TRANSCRIPTION_FORMATS,
  invalidRequest,
  type ImageGenerationRequest,
  type ImagesResponse,
  type SpeechRequest,
  type TaskJob,
  type TaskOutput,
  type TranscriptionResponse,
  type TranscriptionVerboseResponse,
} from "@switchboard/protocol";
import type { ArtifactLinks } from "./artifact-links.js";
import type { JobRunner } from "./job-runner.js";
import { readMultipartForm, type MultipartLimits } from "./multipart-form.js";
import type { GatewayCatalog } from "./openai-routes.js";
import { newJobId } from "./request-id.js";
import { chooseTaskModel, runTask, uploadAsInput } from "./task-routes.js";

export interface MediaRoutesOptions {
  catalog: GatewayCatalog;
  runner: JobRunner;
  links: ArtifactLinks;
  multipart: MultipartLimits;
}

const errorResponses = { "4xx": { $ref: "ErrorResponse#" }, "5xx": { $ref: "ErrorResponse#" } };
const security = [{ bearerAuth: [] }];

/** `512x768` → width and height; `auto` or absent → the model decides. */
function imageSize(size: string | null | undefined): { width?: number; height?: number } {
  if (!size || size === "auto") return {};
  const [width, height] = size.split("x").map(Number);
  return { width: width!, height: height! };
}

export function registerMediaRoutes(app: FastifyInstance, options: MediaRoutesOptions): void {
  const { catalog, runner, links } = options;

  app.post<{ Body: ImageGenerationRequest }>(
    "/v1/images/generations",
    {
      config: { auth: true },
      schema: {
        operationId: "createImage",
        tags: ["Images"],
        summary: "Generate images from a prompt (text-to-image)",
        security,
        body: { $ref: "CreateImageRequest#" },
        response: { 200: { $ref: "ImagesResponse#" }, ...errorResponses },
      },
    },
    async (request, reply): Promise<ImagesResponse | typeof reply> => {
      const body = request.body;
      if (body.stream === true) throw invalidRequest("Streaming partial images is not supported: leave out 'stream'.", "stream");
      const format = body.response_format ?? "url";
      links.checkFormat(format);
      const { model, fallbackModels } = chooseTaskModel(catalog, "text-to-image", body.model);
      const parameters = imageSize(body.size);
      const jobs = Array.from({ length: body.n ?? 1 }, (): TaskJob => ({
        kind: "task",
        id: newJobId(),
        requestId: request.id,
        model: model.id,
        task: "text-to-image",
        inputs: body.prompt,
        ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
        ...(fallbackModels.length > 0 ? { fallbackModels } : {}),
      }));
      const results = await Promise.all(jobs.map((job) => runTask(runner, request, reply, job)));
      if (results.some((result) => result === undefined)) return reply;
      const data = await Promise.all(
        results.map(async (result) => {
          const image = (result!.output as TaskOutput<"text-to-image">).image;
          if (format === "b64_json") return { b64_json: (await links.bytes(image)).data.toString("base64") };
          const linked = await links.toUrl(image, request);
          return { url: linked.type === "artifact" ? linked.url! : "" };
        }),
      );
      return { created: Math.floor(Date.now() / 1000), data };
    },
  );

  app.post<{ Body: SpeechRequest }>(
    "/v1/audio/speech",
    {
      config: { auth: true },
      schema: {
        operationId: "createSpeech",
        tags: ["Audio"],
        summary: "Speak a text (text-to-speech); the answer is the audio file",
        security,
        body: { $ref: "CreateSpeechRequest#" },
        response: {
          200: {
            description: "The audio, in the format the model produces (see Content-Type: audio/wav, audio/flac, audio/mpeg, ...).",
            content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.stream_format === "sse") throw invalidRequest("Streaming speech as server-sent events is not supported: leave out 'stream_format' or set it to 'audio'.", "stream_format");
      const { model } = chooseTaskModel(catalog, "text-to-speech", body.model);
      const job: TaskJob = { kind: "task", id: newJobId(), requestId: request.id, model: model.id, task: "text-to-speech", inputs: body.input };
      const result = await runTask(runner, request, reply, job);
      if (!result) return reply;
      const audio = await links.bytes((result.output as TaskOutput<"text-to-speech">).audio);
      reply.header("content-type", audio.mimeType).header("x-switchboard-model", result.model);
      return reply.send(audio.data);
    },
  );

  app.post(
    "/v1/audio/transcriptions",
    {
      config: { auth: true },
      schema: {
        operationId: "createTranscription",
        tags: ["Audio"],
        summary: "Transcribe an uploaded audio file (automatic speech recognition)",
        description: "multipart/form-data with the parts described by CreateTranscriptionRequest.",
        security,
        response: {
          200: {
            description: "`json`: `{text}`; `verbose_json`: with timestamped segments; `text`: the text alone (text/plain).",
            content: {
              "application/json": { schema: { anyOf: [{ $ref: "CreateTranscriptionResponseJson#" }, { $ref: "CreateTranscriptionResponseVerboseJson#" }] } },
              "text/plain": { schema: { type: "string" } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) {
        throw new GatewayError("Send the audio as multipart/form-data with a 'file' part and a 'model' part.", {
          status: 415,
          type: "invalid_request_error",
          code: "unsupported_media_type",
        });
      }
      const form = await readMultipartForm(request, options.multipart);
      const file = form.files.get("file");
      if (!file) throw invalidRequest("Missing required parameter: 'file' (the audio, as a file part).", "file");
      const modelName = form.fields.get("model");
      if (!modelName) throw invalidRequest("Missing required parameter: 'model'.", "model");
      const format = form.fields.get("response_format") ?? "json";
      if (!(TRANSCRIPTION_FORMATS as readonly string[]).includes(format)) {
        throw invalidRequest(`'response_format' must be one of ${TRANSCRIPTION_FORMATS.join(", ")} (got '${format.slice(0, 32)}'): srt and vtt are not served.`, "response_format");
      }
      const temperatureText = form.fields.get("temperature");
      const temperature = temperatureText === undefined || temperatureText === "" ? undefined : Number(temperatureText);
      if (temperature !== undefined && !(temperature >= 0 && temperature <= 1)) throw invalidRequest("'temperature' must be a number from 0 to 1.", "temperature");
      const { model } = chooseTaskModel(catalog, "automatic-speech-recognition", modelName);
      const parameters: Record<string, unknown> = {};
      if (format === "verbose_json") parameters.return_timestamps = true;
      if (temperature !== undefined && temperature > 0) parameters.generation_parameters = { temperature, do_sample: true };
      const job = {
        kind: "task",
        id: newJobId(),
        requestId: request.id,
        model: model.id,
        task: "automatic-speech-recognition",
        inputs: await uploadAsInput(file, links),
        ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
      } as TaskJob;
      const result = await runTask(runner, request, reply, job);
      if (!result) return reply;
      const output = result.output as TaskOutput<"automatic-speech-recognition">;
      if (format === "text") return reply.type("text/plain; charset=utf-8").send(output.text);
      if (format === "json") return { text: output.text } satisfies TranscriptionResponse;
      const segments = (output.chunks ?? []).map((chunk, id) => ({ id, start: chunk.timestamp[0]!, end: chunk.timestamp[1]!, text: chunk.text }));
      return {
        task: "transcribe",
        language: form.fields.get("language") || "unknown",
        duration: segments.at(-1)?.end ?? 0,
        text: output.text,
        segments,
      } satisfies TranscriptionVerboseResponse;
    },
  );
}
