/**
 * Data sets for calibration and evaluation: items of one shape, optional integer labels, and batches with
 * seeded shuffling and a sample limit. Batches are { input, labels } and feed gatherStats() and evaluate().
 */
import { VbpError } from '../errors';
import type { Tensor } from '../tensor';
import { seededRandom } from '../random';

export interface Batch {
  input: Tensor<Float32Array>;
  /** Class index per item, -1 where unknown. */
  labels: Int32Array;
  /** Positions of the items in the data set. */
  indices: Int32Array;
}

export interface BatchOptions {
  batchSize?: number;
  /** Shuffle with this seed (same seed, same order); no shuffling when undefined. */
  shuffle?: boolean;
  seed?: number;
  /** Use at most this many items (after shuffling). */
  limit?: number;
}

export interface Dataset {
  readonly size: number;
  /** Shape of one item after preprocessing, e.g. [1, 28, 28]. */
  readonly itemShape: number[];
  readonly classes?: string[];
  readonly description: string;
  /** Writes item `index` (preprocessed) into `target` and returns its label (-1 if none). */
  read(index: number, target: Float32Array): Promise<number>;
}

/** Seeded Fisher-Yates order of 0..n-1 (mulberry32 generator). */
export function shuffledOrder(n: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const random = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function itemCount(dataset: Dataset, options: BatchOptions = {}): number {
  return Math.min(dataset.size, options.limit ?? dataset.size);
}

/** Yields the data set in batches (the last one may be smaller). */
export async function* batches(dataset: Dataset, options: BatchOptions = {}): AsyncGenerator<Batch> {
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new VbpError('INVALID_ARGUMENT', `batch size must be a positive integer, got ${batchSize}`);
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new VbpError('INVALID_ARGUMENT', `limit must be a positive integer, got ${options.limit}`);
  }
  const order = options.shuffle ? shuffledOrder(dataset.size, options.seed ?? 0) : Int32Array.from({ length: dataset.size }, (_, i) => i);
  const total = itemCount(dataset, options);
  const itemSize = dataset.itemShape.reduce((a, b) => a * b, 1);
  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const data = new Float32Array(n * itemSize);
    const labels = new Int32Array(n);
    const indices = order.slice(start, start + n);
    for (let i = 0; i < n; i++) {
      labels[i] = await dataset.read(indices[i], data.subarray(i * itemSize, (i + 1) * itemSize));
    }
    yield { input: { data, shape: [n, ...dataset.itemShape], dtype: 'float32' }, labels, indices };
  }
}
