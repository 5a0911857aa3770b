/**
 * `POST /v1/audio/speech` (text-to-speech) and `POST /v1/audio/transcriptions`
 * (automatic speech recognition), in OpenAI's shapes.
 */
import { Type, type Static } from "typebox";

export const SpeechRequestSchema = Type.Object(
  {
    model: Type.String({ description: "Id or alias of a text-to-speech model." }),
    input: Type.String({ minLength: 1, maxLength: 4096, description: "The text to speak (at most 4096 characters)." }),
    voice: Type.Optional(
      Type.Union([Type.String(), Type.Object({ id: Type.String() })], {
        description: "Accepted and ignored: a text-to-speech model speaks with its own voice.",
      }),
    ),
    instructions: Type.Optional(Type.String({ description: "Accepted and ignored." })),
    response_format: Type.Optional(
      Type.Enum(["mp3", "opus", "aac", "flac", "wav", "pcm"], {
        description: "Accepted, not transcoded: the audio comes in the format the model produces, named by the response's Content-Type.",
      }),
    ),
    speed: Type.Optional(Type.Number({ minimum: 0.25, maximum: 4, description: "Accepted and ignored." })),
    stream_format: Type.Optional(Type.Enum(["audio", "sse"], { description: "Only `audio` is supported; `sse` is answered with 400." })),
  },
  { $id: "CreateSpeechRequest", description: "Speak a text with a text-to-speech model; the answer is the audio file itself." },
);
export type SpeechRequest = Static<typeof SpeechRequestSchema>;

/** Response formats of `/v1/audio/transcriptions` that are served. */
export const TRANSCRIPTION_FORMATS = ["json", "text", "verbose_json"] as const;

/**
 * The multipart form of `POST /v1/audio/transcriptions`, for the OpenAPI
 * document (OpenAPI 3.1 style: a file is a string with a media type). The
 * route reads the form itself.
 */
export const TranscriptionRequestSchema = Type.Object(
  {
    file: Type.String({ contentMediaType: "application/octet-stream", description: "The audio file (WAV, FLAC, OGG, MP3, WebM or M4A)." }),
    model: Type.String({ description: "Id or alias of an automatic-speech-recognition model." }),
    response_format: Type.Optional(
      Type.Enum([...TRANSCRIPTION_FORMATS], {
        description: "`json` (default): `{text}`; `text`: the text alone as text/plain; `verbose_json`: with timestamped segments (`srt` and `vtt` are answered with 400).",
      }),
    ),
    language: Type.Optional(Type.String({ description: "Language of the audio (ISO-639-1), passed to the model as a generation parameter." })),
    prompt: Type.Optional(Type.String({ description: "Accepted and ignored." })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "Sampling temperature, passed to the model as a generation parameter." })),
  },
  { $id: "CreateTranscriptionRequest", description: "Transcribe an uploaded audio file (multipart/form-data)." },
);

export const TranscriptionResponseSchema = Type.Object(
  { text: Type.String({ description: "The transcribed text." }) },
  { $id: "CreateTranscriptionResponseJson", description: "A transcription (`response_format: json`)." },
);
export type TranscriptionResponse = Static<typeof TranscriptionResponseSchema>;

export const TranscriptionVerboseResponseSchema = Type.Object(
  {
    task: Type.Literal("transcribe"),
    language: Type.String({ description: "The request's `language`, or `unknown` when it gave none." }),
    duration: Type.Number({ description: "Seconds of speech: the end of the last timestamped segment." }),
    text: Type.String(),
    segments: Type.Array(
      Type.Object({
        id: Type.Integer(),
        start: Type.Number({ description: "Seconds." }),
        end: Type.Number({ description: "Seconds." }),
        text: Type.String(),
      }),
      { description: "Timestamped chunks as the model made them; OpenAI's decoder statistics (`avg_logprob`, ...) are not known and left out." },
    ),
  },
  { $id: "CreateTranscriptionResponseVerboseJson", description: "A transcription with timestamps (`response_format: verbose_json`)." },
);
export type TranscriptionVerboseResponse = Static<typeof TranscriptionVerboseResponseSchema>;
