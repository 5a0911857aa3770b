import type { DownloadProgress } from "./resolve-model-source.js";

export interface ProgressBarOptions {
  /** Characters between the brackets; default 10. */
  width?: number;
}

/**
 * One line of download progress for a terminal or a log:
 * `[=====>    ] 45% 12.3/27.0 MB` (GB once the file reaches 1 GB; decimal
 * units, as download sites use). The percentage rounds down, so it shows 100%
 * only when every byte is in. Without a known total: `[          ] 12.3 MB`.
 */
export function formatProgressBar(progress: DownloadProgress, options: ProgressBarOptions = {}): string {
  const width = Math.max(1, Math.floor(options.width ?? 10));
  const { downloadedBytes, totalBytes } = progress;
  if (!(totalBytes > 0)) {
    const unit = pickUnit(downloadedBytes);
    return `[${" ".repeat(width)}] ${formatAmount(downloadedBytes, unit)} ${unit.name}`;
  }
  const ratio = Math.min(1, Math.max(0, downloadedBytes / totalBytes));
  const filled = Math.round(ratio * width);
  const bar = filled >= width ? "=".repeat(width) : `${"=".repeat(filled)}>${" ".repeat(width - filled - 1)}`;
  const percent = Math.floor(ratio * 100);
  const unit = pickUnit(totalBytes);
  return `[${bar}] ${percent}% ${formatAmount(Math.min(downloadedBytes, totalBytes), unit)}/${formatAmount(totalBytes, unit)} ${unit.name}`;
}

interface Unit {
  name: string;
  bytes: number;
}

function pickUnit(bytes: number): Unit {
  return bytes >= 1e9 ? { name: "GB", bytes: 1e9 } : { name: "MB", bytes: 1e6 };
}

function formatAmount(bytes: number, unit: Unit): string {
  return (Math.max(0, bytes) / unit.bytes).toFixed(unit.name === "GB" ? 2 : 1);
}
