/**
 * `POST /v1/images/generations`: OpenAI's request and response, served by a
 * text-to-image model. Fields that only OpenAI's own models understand
 * (`quality`, `style`, `background`, `moderation`, ...) are accepted and
 * ignored; `size` becomes the model's `width` and `height`.
 */
import { Type, type Static } from "typebox";
import { Nullable } from "./common-schema.js";

export const ImageGenerationRequestSchema = Type.Object(
  {
    prompt: Type.String({ minLength: 1, description: "What to draw." }),
    model: Type.Optional(
      Nullable(Type.String({ description: "Id or alias of a text-to-image model; the catalog's most popular one when absent." })),
    ),
    n: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 4, description: "Images to generate, 1-4 (one model call each)." }))),
    response_format: Type.Optional(
      Nullable(
        Type.Enum(["url", "b64_json"], {
          description: "`url` (default): a signed, expiring URL of this gateway that a browser can open; `b64_json`: the image inline as base64.",
        }),
      ),
    ),
    size: Type.Optional(
      Nullable(
        Type.String({
          pattern: "^(auto|[1-9][0-9]{0,4}x[1-9][0-9]{0,4})$",
          description: "`WIDTHxHEIGHT` in pixels (`512x512`), passed to the model as width and height; `auto` leaves it to the model.",
        }),
      ),
    ),
    quality: Type.Optional(Nullable(Type.String({ description: "Accepted and ignored." }))),
    style: Type.Optional(Nullable(Type.String({ description: "Accepted and ignored." }))),
    background: Type.Optional(Nullable(Type.String({ description: "Accepted and ignored." }))),
    moderation: Type.Optional(Nullable(Type.String({ description: "Accepted and ignored." }))),
    output_format: Type.Optional(Nullable(Type.String({ description: "Accepted and ignored: the image comes in the format the model produces (see its content type)." }))),
    output_compression: Type.Optional(Nullable(Type.Integer({ description: "Accepted and ignored." }))),
    stream: Type.Optional(Nullable(Type.Boolean({ description: "Streaming partial images is not supported: `true` is answered with 400." }))),
    partial_images: Type.Optional(Nullable(Type.Integer({ description: "Accepted and ignored." }))),
    user: Type.Optional(Type.String({ description: "Accepted and ignored." })),
  },
  { $id: "CreateImageRequest", description: "Generate images from a prompt with a text-to-image model. Unknown fields are ignored." },
);
export type ImageGenerationRequest = Static<typeof ImageGenerationRequestSchema>;

export const ImagesResponseSchema = Type.Object(
  {
    created: Type.Integer({ description: "Unix time (seconds)." }),
    data: Type.Array(
      Type.Object({
        url: Type.Optional(Type.String({ description: "Signed, expiring URL of the image (`response_format: url`)." })),
        b64_json: Type.Optional(Type.String({ description: "Base64 of the image (`response_format: b64_json`)." })),
        revised_prompt: Type.Optional(Type.String({ description: "Never set: prompts are used as given." })),
      }),
    ),
  },
  { $id: "ImagesResponse", description: "The generated images, in order." },
);
export type ImagesResponse = Static<typeof ImagesResponseSchema>;
