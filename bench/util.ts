/** Helpers shared by the benchmark scripts. */
import type { Tensor } from '../lib';

export function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

/** Seeded uniform [-1, 1) batches, the same in every run. */
export function randomBatches(count: number, batchSize: number, itemShape: number[], seed = 1): Tensor<Float32Array>[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 31 - 1;
  };
  const per = itemShape.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => {
    const data = new Float32Array(batchSize * per);
    for (let i = 0; i < data.length; i++) data[i] = next();
    return { data, shape: [batchSize, ...itemShape] };
  });
}

export { median } from '../lib/latency';
