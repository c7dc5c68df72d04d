/** Forward latency of a model: median and spread of repeated timed runs after warm-up. */
import type { Model } from './model';
import { probeInput } from './model';

export interface LatencyOptions {
  warmup?: number;
  runs?: number;
}

export interface Latency {
  batchSize: number;
  runs: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  itemsPerSecond: number;
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

export async function measureLatency(model: Model, itemShape: number[], batchSize: number, options: LatencyOptions = {}): Promise<Latency> {
  const input = probeInput([batchSize, ...itemShape]);
  for (let i = 0; i < (options.warmup ?? 5); i++) await model.forward(input);
  const runs = options.runs ?? 30;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await model.forward(input);
    times.push(performance.now() - started);
  }
  const medianMs = median(times);
  return { batchSize, runs, medianMs, p10Ms: quantile(times, 0.1), p90Ms: quantile(times, 0.9), itemsPerSecond: (batchSize * 1000) / medianMs };
}
