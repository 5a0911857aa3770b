/**
 * How binary task outputs leave the gateway. Engines answer with artifact
 * references (or inline base64 when they have no store); the client asked
 * for `url` (a signed, expiring URL of `GET /v1/artifacts/{id}`) or
 * `b64_json` (the bytes inline). This module turns one into the other, in
 * both directions, with the gateway's store and signing key.
 */
import type { FastifyRequest } from "fastify";
import type { ArtifactStore, ArtifactUrlSigner } from "@switchboard/artifacts";
import { GatewayError, invalidRequest, mapBinaryOutputs, type BinaryOutput, type BinaryResponseFormat } from "@switchboard/protocol";

/** The gateway's view of the artifact store: where outputs are read and how their URLs are signed. */
export interface GatewayArtifacts {
  store: ArtifactStore;
  signer: ArtifactUrlSigner;
  /** Lifetime of a signed URL; never past the artifact's own expiry. */
  urlTtlSeconds: number;
  /** Origin of artifact URLs (behind a proxy); the request's own origin when absent. */
  publicBaseUrl?: string;
}

/** Bytes of one binary output. */
export interface BinaryBytes {
  data: Buffer;
  mimeType: string;
}

const artifactGone = (id: string) =>
  new GatewayError(`The output artifact '${id.slice(0, 80)}' has expired or was evicted from the artifact store before it could be read.`, {
    status: 502,
    type: "server_error",
    code: "artifact_not_found",
  });

export class ArtifactLinks {
  readonly #artifacts: GatewayArtifacts | undefined;

  constructor(artifacts?: GatewayArtifacts) {
    this.#artifacts = artifacts;
  }

  /** Whether URLs can be made (a store and a key are configured). */
  get enabled(): boolean {
    return this.#artifacts !== undefined;
  }

  get store(): ArtifactStore | undefined {
    return this.#artifacts?.store;
  }

  /** `url` when the gateway can serve artifacts, else `b64_json`. */
  defaultFormat(): BinaryResponseFormat {
    return this.enabled ? "url" : "b64_json";
  }

  /** Refuses `url` when there is no store to serve it from. */
  checkFormat(format: BinaryResponseFormat, param = "response_format"): void {
    if (format === "url" && !this.enabled) {
      throw invalidRequest("This server has no artifact store, so it cannot answer with URLs: ask for 'b64_json'.", param, "unsupported_response_format");
    }
  }

  /** Every binary output of a task output in the asked format. */
  present<T>(output: T, format: BinaryResponseFormat, request: FastifyRequest): Promise<T> {
    return mapBinaryOutputs(output, (binary) => (format === "url" ? this.toUrl(binary, request) : this.toBase64(binary)));
  }

  /** The binary as an artifact with a signed `url` (stored first when it came inline). */
  async toUrl(binary: BinaryOutput, request: FastifyRequest): Promise<BinaryOutput> {
    const artifacts = this.#artifacts;
    if (!artifacts) throw invalidRequest("This server has no artifact store, so it cannot answer with URLs.", "response_format", "unsupported_response_format");
    let reference = binary;
    if (binary.type === "base64") {
      const info = await artifacts.store.put(Buffer.from(binary.data, "base64"), binary.mimeType);
      reference = { type: "artifact", id: info.id, sha256: info.sha256, mimeType: info.mimeType, bytes: info.bytes, expiresAt: info.expiresAt };
    }
    if (reference.type !== "artifact") return reference;
    const expiresAt = Math.min(Date.now() + artifacts.urlTtlSeconds * 1000, reference.expiresAt ?? Infinity);
    const path = artifacts.signer.path(reference.id, expiresAt);
    const url = `${this.origin(request)}${path}`;
    // The URL carries the capability; its expiry is what the signature says (whole seconds).
    return { ...reference, url, expiresAt: Math.floor(expiresAt / 1000) * 1000 };
  }

  /** The binary inline. */
  async toBase64(binary: BinaryOutput): Promise<BinaryOutput> {
    if (binary.type === "base64") return binary;
    const { data, mimeType } = await this.bytes(binary);
    return { type: "base64", mimeType, data: data.toString("base64"), bytes: data.byteLength };
  }

  /** The bytes of a binary output, read from the store when it is an artifact. */
  async bytes(binary: BinaryOutput): Promise<BinaryBytes> {
    if (binary.type === "base64") return { data: Buffer.from(binary.data, "base64"), mimeType: binary.mimeType };
    const store = this.#artifacts?.store;
    if (!store) {
      throw new GatewayError("The engine answered with an artifact, but this gateway has no artifact store configured to read it from.", {
        status: 500,
        type: "server_error",
        code: "artifact_store_unconfigured",
      });
    }
    const artifact = await store.get(binary.id);
    if (!artifact) throw artifactGone(binary.id);
    return { data: Buffer.from(artifact.data.buffer, artifact.data.byteOffset, artifact.data.byteLength), mimeType: artifact.mimeType };
  }

  /** `https://host:port` of artifact URLs. */
  origin(request: FastifyRequest): string {
    return this.#artifacts?.publicBaseUrl ?? `${request.protocol}://${request.host}`;
  }
}
