export { startHfWireServer } from "./wire-server.js";
export type { WireServer, WireServerOptions, WireBehaviour, WireFault, RecordedRequest, AddressingStyle } from "./wire-server.js";
export { SpecValidator } from "./spec-validator.js";
export { makePng, makeWav, makeMp4, sniffMedia, type MediaKind } from "./media.js";
export { TEST_PNG, TEST_WAV, TEST_MP4, embed } from "./task-wire.js";
