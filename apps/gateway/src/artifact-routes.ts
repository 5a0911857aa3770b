/**
 * `GET /v1/artifacts/{id}?expires=…&signature=…`: serves a stored artifact
 * to whoever holds a URL the gateway signed. The signature is the
 * capability, so the route needs no API key and a browser can open it; a
 * tampered or expired URL is a 403, an artifact the store no longer has a
 * 404, both as OpenAI error objects.
 */
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { GatewayError } from "@switchboard/protocol";
import type { GatewayArtifacts } from "./artifact-links.js";

/** Media served under their own type; anything else is a download. */
const INLINE_TYPES = /^(image\/(png|jpeg|gif|webp|bmp|tiff)|audio\/[\w.+-]+|video\/[\w.+-]+)$/;

const EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/gif": "gif",
  "image/webp": "webp",
  "image/bmp": "bmp",
  "image/tiff": "tiff",
  "audio/wav": "wav",
  "audio/flac": "flac",
  "audio/ogg": "ogg",
  "audio/mpeg": "mp3",
  "audio/mp4": "m4a",
  "video/mp4": "mp4",
  "video/webm": "webm",
};

const forbidden = (message: string, code: string) => new GatewayError(message, { status: 403, type: "permission_error", code });

export function registerArtifactRoutes(app: FastifyInstance, artifacts: GatewayArtifacts): void {
  app.get<{ Params: { id: string }; Querystring: { expires?: string; signature?: string } }>(
    "/v1/artifacts/:id",
    {
      config: { auth: false },
      schema: {
        operationId: "getArtifact",
        tags: ["Artifacts"],
        summary: "Download an artifact (image, audio, video) through a signed, expiring URL; no API key needed",
        description:
          "URLs are made by the gateway in task and image answers (`response_format: url`). The signature covers the id and the expiry; a changed or expired URL is a 403.",
        params: Type.Object({ id: Type.String({ description: "Content address of the artifact (hex SHA-256)." }) }),
        querystring: Type.Object({
          expires: Type.Optional(Type.String({ description: "Unix time (seconds) after which the URL stops working." })),
          signature: Type.Optional(Type.String({ description: "HMAC of the id and the expiry." })),
        }),
        response: {
          200: { description: "The artifact's bytes, with its media type.", content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } },
          403: { $ref: "ErrorResponse#" },
          404: { $ref: "ErrorResponse#" },
          "5xx": { $ref: "ErrorResponse#" },
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { expires, signature } = request.query;
      const check = artifacts.signer.check(id, expires, signature);
      if (check === "invalid") throw forbidden("This artifact URL is not valid: its signature does not match. Use the URL exactly as the API returned it.", "invalid_signature");
      if (check === "expired") throw forbidden("This artifact URL has expired. Request the output again for a fresh URL.", "url_expired");
      const artifact = await artifacts.store.get(id);
      if (!artifact) {
        throw new GatewayError("This artifact no longer exists: artifacts are kept for a limited time.", { status: 404, type: "not_found_error", code: "artifact_not_found" });
      }
      const inline = INLINE_TYPES.test(artifact.mimeType);
      const extension = EXTENSIONS[artifact.mimeType] ?? "bin";
      const maxAge = Math.max(0, Number(expires) - Math.floor(Date.now() / 1000));
      reply
        .header("content-type", inline ? artifact.mimeType : "application/octet-stream")
        .header("content-disposition", `${inline ? "inline" : "attachment"}; filename="${id.slice(0, 16)}.${extension}"`)
        .header("cache-control", `private, max-age=${maxAge}`)
        .header("etag", `"${id}"`)
        // Bytes from a model are never run as a page, whatever they hold.
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", "default-src 'none'; sandbox")
        .header("cross-origin-resource-policy", "cross-origin");
      return reply.send(Buffer.from(artifact.data.buffer, artifact.data.byteOffset, artifact.data.byteLength));
    },
  );
}
