/**
 * vbp stats --shard I/N, then vbp merge, and vbp stats --devices: the statistics of one pass over the same
 * items, up to float64 rounding; bad values exit 2 naming the option. The library's replicas are in
 * test/statistics/replicas.test.ts.
 */
import path from 'node:path';
import { Stats } from '../../lib';
import { fixture, maxAbsDiff, maxRelDiff, tempDir, vbp } from '../helpers';

const dir = tempDir('torch-vbp-replicas-');

/** Largest difference relative to the largest magnitude: for statistics of activations computed in float32. */
function scaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return maxAbsDiff(a, b) / Math.max(...Array.from(b, Math.abs));
}

function expectSameStats(a: Stats, b: Stats, tolerance = 1e-12): void {
  expect(a.info).toMatchObject({
    batches: b.info.batches,
    items: b.info.items,
    modelMacs: b.info.modelMacs,
    modelParams: b.info.modelParams,
  });
  a.layers.forEach((layer, i) => {
    const other = b.layers[i];
    expect(layer.count).toBe(other.count);
    expect(maxRelDiff(layer.mean, other.mean, 1e-9)).toBeLessThanOrEqual(tolerance);
    expect(maxRelDiff(layer.m2, other.m2, 1e-9)).toBeLessThanOrEqual(tolerance);
    if (other.comoment) expect(maxRelDiff(a.covariance(i), b.covariance(i), 1e-9)).toBeLessThanOrEqual(1e-10);
  });
}

describe('vbp stats --shard and --devices', () => {
  const calib = fixture('calib.npy');
  const common = ['--data', calib, '--raw', '--batch-size', '8', '--quiet'];
  const out = (name: string) => path.join(dir, name);

  it('shards 0/3, 1/3 and 2/3 merged with vbp merge equal the statistics of the whole data set (to float32 forward rounding: the batches differ)', async () => {
    expect(vbp(['stats', fixture('deit_scripted.pt'), ...common, '--out', out('all.safetensors')]).status).toBe(0);
    for (const i of [0, 1, 2]) {
      const r = vbp([
        'stats',
        fixture('deit_scripted.pt'),
        ...common,
        '--shard',
        `${i}/3`,
        '--out',
        out(`shard-${i}.safetensors`),
      ]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    const merge = vbp([
      'merge',
      out('shard-0.safetensors'),
      out('shard-1.safetensors'),
      out('shard-2.safetensors'),
      '--out',
      out('merged.safetensors'),
      '--quiet',
    ]);
    expect(merge.status).toBe(0);
    const [all, merged, first] = await Promise.all([
      Stats.load(out('all.safetensors')),
      Stats.load(out('merged.safetensors')),
      Stats.load(out('shard-0.safetensors')),
    ]);
    expect(first.info.items).toBe(Math.ceil(all.info.items / 3));
    expect(merged.info.items).toBe(all.info.items);
    merged.layers.forEach((layer, i) => {
      expect(layer.count).toBe(all.layers[i].count);
      // The same items in other batches: LibTorch's float32 results depend on the batch (measured ~1e-7).
      expect(scaledDiff(layer.mean, all.layers[i].mean)).toBeLessThanOrEqual(1e-5);
      expect(scaledDiff(layer.m2, all.layers[i].m2)).toBeLessThanOrEqual(1e-5);
    });
  });

  it('--devices cpu,cpu gives the statistics of one pass; bad values exit 2 naming the option', async () => {
    expect(
      vbp(['stats', fixture('deit_scripted.pt'), ...common, '--devices', 'cpu,cpu', '--out', out('two.safetensors')])
        .status,
    ).toBe(0);
    // The same batches as the single pass, each through one of the replicas: equal to float64 rounding.
    expectSameStats(await Stats.load(out('two.safetensors')), await Stats.load(out('all.safetensors')));
    for (const [flag, value] of [
      ['--shard', '3/3'],
      ['--shard', 'x'],
      ['--devices', 'cpu,,cpu'],
      ['--devices', 'gpu'],
    ]) {
      const r = vbp(['stats', fixture('deit_scripted.pt'), ...common, flag, value, '--out', out('bad.safetensors')]);
      expect({ flag, value, status: r.status, names: r.stderr.includes(flag) }).toEqual({
        flag,
        value,
        status: 2,
        names: true,
      });
    }
  });
});
