/** Helpers shared by the benchmark scripts. */
import fs from 'node:fs';
import path from 'node:path';
import type { Tensor } from '../lib';
import { packageRoot } from '../lib/util/package-root';
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

/** The bundled model's architecture, as models/deit.py's DeiT takes it (the Python references rebuild it eagerly). */
export const BUNDLED_CONFIG = {
  img_size: 28,
  patch_size: 7,
  in_chans: 1,
  num_classes: 10,
  embed_dim: 64,
  depth: 6,
  num_heads: 4,
  mlp_ratio: 2.0,
};

/**
 * Replaces the text between README.md's `<!-- NAME:start -->` and `<!-- NAME:end -->` markers with `lines` (the
 * markers stay); a README without them is left alone.
 */
export function replaceReadmeSection(name: string, lines: string[]): void {
  const readme = path.join(packageRoot, 'README.md');
  if (!fs.existsSync(readme)) return;
  const text = fs.readFileSync(readme, 'utf8');
  const [start, end] = [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`];
  if (!text.includes(start) || !text.includes(end)) return;
  fs.writeFileSync(
    readme,
    text.slice(0, text.indexOf(start)) + [start, ...lines, end].join('\n') + text.slice(text.indexOf(end) + end.length),
  );
}
