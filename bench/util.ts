/** Helpers shared by the benchmark scripts. */
import type { Tensor } from '../lib';
import { uniformArray } from '../lib/util/random';

export function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

/** Seeded uniform [-1, 1) batches, the same in every run. */
export function randomBatches(count: number, batchSize: number, itemShape: number[], seed = 1): Tensor<Float32Array>[] {
  const per = itemShape.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, (_, i) => ({
    data: uniformArray(batchSize * per, seed + i),
    shape: [batchSize, ...itemShape],
  }));
}

export { median } from '../lib/util/quantiles';
