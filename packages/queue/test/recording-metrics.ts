import type { QueueDepthSample, QueueJobOutcome, QueueMetrics } from "../src/index.js";

/** A QueueMetrics that records calls, for assertions. */
export class RecordingMetrics implements QueueMetrics {
  readonly started: { queue: string; waitSeconds: number }[] = [];
  readonly finished: { queue: string; outcome: QueueJobOutcome; runSeconds: number }[] = [];
  readonly retried: string[] = [];
  readonly stalled: string[] = [];
  readonly served: string[] = [];
  readonly readers: (() => readonly QueueDepthSample[] | Promise<readonly QueueDepthSample[]>)[] = [];

  jobStarted(queue: string, waitSeconds: number): void {
    this.started.push({ queue, waitSeconds });
  }
  jobFinished(queue: string, outcome: QueueJobOutcome, runSeconds: number): void {
    this.finished.push({ queue, outcome, runSeconds });
  }
  jobRetried(queue: string): void {
    this.retried.push(queue);
  }
  jobStalled(queue: string): void {
    this.stalled.push(queue);
  }
  queueServed(queue: string): void {
    this.served.push(queue);
  }
  watchDepth(read: () => readonly QueueDepthSample[] | Promise<readonly QueueDepthSample[]>): () => void {
    this.readers.push(read);
    return () => this.readers.splice(this.readers.indexOf(read), 1);
  }
  async depth(): Promise<QueueDepthSample[]> {
    return (await Promise.all(this.readers.map((read) => read()))).flat();
  }
}
