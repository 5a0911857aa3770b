export { resolveModelSource, ModelSourceError, fileNameForUrl, type DownloadProgress, type ResolveModelSourceOptions } from "./resolve-model-source.js";
export { formatProgressBar, type ProgressBarOptions } from "./progress-bar.js";
