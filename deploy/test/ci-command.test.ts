/**
 * The README's two commands are what a newcomer runs; CI must run the test
 * one and nothing else, so a green CI means the README's command passes.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

/** The README's shell blocks, in order. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!.trim());
}

describe("the README's commands", () => {
  it(".ci/run runs exactly the README's test command", () => {
    const testCommand = shellBlocks(read("README.md")).find((block) => / test$/.test(block));
    expect(testCommand).toBeDefined();
    const commands = read(".ci/run")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#") && !line.startsWith("cd "));
    expect(commands).toEqual([testCommand]);
  });

  it("the start command installs and starts the embedded default", () => {
    const start = shellBlocks(read("README.md"))[0];
    expect(start).toBe("npx -y pnpm@12.4.2 install && npx -y pnpm@12.4.2 start");
    expect(JSON.parse(read("package.json")).scripts.start).toContain("apps/embedded/");
  });
});
