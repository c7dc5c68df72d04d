/** Forward latency of a model: median and spread of repeated timed runs after warm-up. */
import { probeInput, type Model } from '../model/model';
import { median, quantile } from '../util/quantiles';

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

export async function measureLatency(
  model: Model,
  itemShape: number[],
  batchSize: number,
  options: LatencyOptions = {},
): Promise<Latency> {
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
  return {
    batchSize,
    runs,
    medianMs,
    p10Ms: quantile(times, 0.1),
    p90Ms: quantile(times, 0.9),
    itemsPerSecond: (batchSize * 1000) / medianMs,
  };
}

export interface SpeedUp {
  batchSize: number;
  runs: number;
  /** Median forward times of the two models, and the median of the per-pair ratios baseline / candidate. */
  baselineMs: number;
  candidateMs: number;
  speedup: number;
  /** The 25th and 75th percentiles of the per-pair ratios: the spread the machine's noise gives. */
  low: number;
  high: number;
  /** Whether the interquartile range of the ratios excludes 1: a speed-up (or slow-down) above the noise. */
  significant: boolean;
}

/**
 * How much faster `candidate` runs than `baseline`, timed in alternating pairs so that drifts of the
 * machine's speed hit both alike: the median of the per-pair ratios and their interquartile range.
 */
export async function compareLatency(
  baseline: Model,
  candidate: Model,
  itemShape: number[],
  batchSize: number,
  options: LatencyOptions = {},
): Promise<SpeedUp> {
  const input = probeInput([batchSize, ...itemShape]);
  for (let i = 0; i < (options.warmup ?? 5); i++) {
    await baseline.forward(input);
    await candidate.forward(input);
  }
  const runs = options.runs ?? 30;
  const base: number[] = [];
  const cand: number[] = [];
  const ratios: number[] = [];
  const time = async (model: Model): Promise<number> => {
    const started = performance.now();
    await model.forward(input);
    return performance.now() - started;
  };
  for (let i = 0; i < runs; i++) {
    // Alternate which one goes first, so neither always runs on a warmer cache.
    let b: number;
    let c: number;
    if (i % 2 === 0) {
      b = await time(baseline);
      c = await time(candidate);
    } else {
      c = await time(candidate);
      b = await time(baseline);
    }
    base.push(b);
    cand.push(c);
    ratios.push(b / c);
  }
  const low = quantile(ratios, 0.25);
  const high = quantile(ratios, 0.75);
  return {
    batchSize,
    runs,
    baselineMs: median(base),
    candidateMs: median(cand),
    speedup: median(ratios),
    low,
    high,
    significant: low > 1 || high < 1,
  };
}
