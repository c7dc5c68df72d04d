/** The options of a calibration about the covariance, checked before any batch, and its progress reports. */
import { VbpError } from '../errors';
import type { MlpBlock } from '../model/mlp';

export interface GatherProgress {
  batches: number;
  items: number;
  elapsedMs: number;
}

export interface CovarianceOptions {
  /** Also gather each block's covariance matrix (for least-squares compensation). */
  covariance?: boolean;
  /**
   * Element type of the per-batch product of centred activations (the running sums are float64 either way):
   * 'float64' (default) or 'float32', faster when every token is used and a little off (how much:
   * README, "Least-squares compensation").
   */
  covarianceProduct?: 'float64' | 'float32';
  /** Refuse (STATS, before any batch) when the covariance matrices would need more bytes than this (default 2 GiB). */
  maxCovarianceBytes?: number;
  /**
   * Share of the samples (tokens) the covariance uses, in (0, 1], picked by a hash of each sample's position
   * (deterministic): the covariance products cost that share of their time. 'auto' (default): every sample
   * for blocks of up to 1,024 neurons, a quarter above (the cost: the benchmark rows 'calibration pass with
   * covariance ... vs plain forward' in README, "Benchmarks"; what a quarter changes in accuracy:
   * README, "Least-squares compensation"). A resumed run samples other tokens than an uninterrupted one
   * would: the same covariance statistically, not bit for bit.
   */
  covarianceSampling?: number | 'auto';
}

/** The share of samples 'auto' gives the covariance of blocks this wide. */
export function autoCovarianceSampling(widestBlock: number): number {
  return widestBlock <= 1024 ? 1 : 0.25;
}

export const DEFAULT_MAX_COVARIANCE_BYTES = 2 * 2 ** 30;

export const COVARIANCE_OPTIONS = ['covariance', 'covarianceProduct', 'maxCovarianceBytes', 'covarianceSampling'];

export function checkCovarianceOptions(options: CovarianceOptions): Required<CovarianceOptions> {
  const product = options.covarianceProduct ?? 'float64';
  if (product !== 'float64' && product !== 'float32')
    throw new VbpError(
      'INVALID_ARGUMENT',
      `covarianceProduct must be 'float64' or 'float32', got '${String(product)}'`,
    );
  const limit = options.maxCovarianceBytes ?? DEFAULT_MAX_COVARIANCE_BYTES;
  if (!(typeof limit === 'number' && limit > 0))
    throw new VbpError('INVALID_ARGUMENT', `maxCovarianceBytes must be a positive number, got ${String(limit)}`);
  const sampling = options.covarianceSampling ?? 'auto';
  if (sampling !== 'auto' && !(typeof sampling === 'number' && sampling > 0 && sampling <= 1)) {
    throw new VbpError('INVALID_ARGUMENT', `covarianceSampling must be 'auto' or in (0, 1], got ${String(sampling)}`);
  }
  return {
    covariance: Boolean(options.covariance),
    covarianceProduct: product,
    maxCovarianceBytes: limit,
    covarianceSampling: sampling,
  };
}

/** Refuses, before any batch, covariance matrices that would take more than `limit` bytes. */
export function checkCovarianceMemory(blocks: MlpBlock[], limit: number): void {
  const bytes = blocks.reduce((n, b) => n + b.hidden * b.hidden * 8, 0);
  if (bytes > limit) {
    throw new VbpError(
      'STATS',
      `the covariance of ${blocks.length} blocks (${blocks.map((b) => b.hidden).join(', ')} neurons) needs ${(bytes / 2 ** 20).toFixed(0)} MiB, ` +
        `more than maxCovarianceBytes (${(limit / 2 ** 20).toFixed(0)} MiB): raise the limit, or gather the blocks in groups with the mlps option`,
    );
  }
}
