import { describe, expect, it } from "vitest";
import { formatProgressBar } from "./progress-bar.js";

describe("formatProgressBar", () => {
  it("draws the bar, the percentage and the amounts", () => {
    expect(formatProgressBar({ downloadedBytes: 12_300_000, totalBytes: 27_000_000 })).toBe("[=====>    ] 45% 12.3/27.0 MB");
  });

  it("starts empty and ends full, showing 100% only when every byte is in", () => {
    expect(formatProgressBar({ downloadedBytes: 0, totalBytes: 27_000_000 })).toBe("[>         ] 0% 0.0/27.0 MB");
    expect(formatProgressBar({ downloadedBytes: 26_999_999, totalBytes: 27_000_000 })).toBe("[==========] 99% 27.0/27.0 MB");
    expect(formatProgressBar({ downloadedBytes: 27_000_000, totalBytes: 27_000_000 })).toBe("[==========] 100% 27.0/27.0 MB");
  });

  it("takes a width, switches to GB for large files and clamps odd input", () => {
    expect(formatProgressBar({ downloadedBytes: 1_000_000_000, totalBytes: 4_000_000_000 }, { width: 20 })).toBe(
      "[=====>              ] 25% 1.00/4.00 GB",
    );
    expect(formatProgressBar({ downloadedBytes: 50, totalBytes: 10 })).toBe("[==========] 100% 0.0/0.0 MB");
  });

  it("shows only the amount when the total is unknown", () => {
    expect(formatProgressBar({ downloadedBytes: 12_300_000, totalBytes: 0 })).toBe("[          ] 12.3 MB");
  });
});
