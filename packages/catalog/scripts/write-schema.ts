/**
 * Writes packages/catalog/config.schema.json from the TypeBox schema.
 * Run after changing src/config-schema.ts: `pnpm --filter @switchboard/catalog write-schema`
 * (a test fails while the committed file differs from the generated one).
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { renderConfigJsonSchema } from "../src/config-schema.js";

const target = fileURLToPath(new URL("../config.schema.json", import.meta.url));
await writeFile(target, renderConfigJsonSchema());
console.log(`wrote ${target}`);
