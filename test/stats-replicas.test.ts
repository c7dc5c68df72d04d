/**
 * Calibration spread out: replicas on several devices in one process (tested with ['cpu', 'cpu']), and
 * shards of the data on several machines (vbp stats --shard I/N, then vbp merge). Both must give the
 * statistics of one pass over the same items, up to float64 rounding.
 */
import path from 'node:path';
import { gatherStats, loadModel, nativeMemory, Stats, type Model, type Tensor } from '../lib';
import { codeOf, fixture, maxAbsDiff, maxRelDiff, npy, tempDir, vbp } from './helpers';

const dir = tempDir('torch-vbp-replicas-');

/** The 64 calibration images of the fixtures as 8 batches of 8. */
function eightBatches(): Tensor[] {
  const calib = npy('calib.npy');
  const per = 3 * 32 * 32;
  return Array.from({ length: 8 }, (_, i) => ({
    data: (calib.data as Float32Array).slice(i * 8 * per, (i + 1) * 8 * per),
    shape: [8, 3, 32, 32],
  }));
}

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

describe('gatherStats on several devices', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(fixture('deit_scripted.pt'));
  });
  afterAll(async () => {
    await model.dispose();
  });

  it("['cpu', 'cpu']: two replicas share the batches and merge to one pass's statistics (covariance too); the copy is released", async () => {
    const batches = eightBatches();
    const single = await gatherStats(model, batches, { covariance: true });
    const live = nativeMemory().liveModels;
    const progress: number[] = [];
    const spread = await gatherStats(model, batches, {
      covariance: true,
      devices: ['cpu', 'cpu'],
      onProgress: (p) => progress.push(p.batches),
    });
    expectSameStats(spread, single);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(nativeMemory().liveModels).toBe(live);
  });

  it('maxBatches, abort with partial statistics, and bad device lists', async () => {
    const batches = eightBatches();
    const limited = await gatherStats(model, batches, { devices: ['cpu', 'cpu'], maxBatches: 3 });
    expect(limited.info.batches).toBe(3);
    const controller = new AbortController();
    const error = await gatherStats(model, batches, {
      devices: ['cpu', 'cpu', 'cpu'],
      signal: controller.signal,
      onProgress: (p) => p.batches === 2 && controller.abort(),
    }).catch((e: { code: string; partial?: Stats }) => e);
    expect((error as { code: string }).code).toBe('ABORTED');
    expect((error as { partial?: Stats }).partial?.info.batches).toBeGreaterThanOrEqual(2);
    for (const devices of [[], ['tpu'], 'cpu', [1]])
      expect(await codeOf(gatherStats(model, batches, { devices: devices as string[] }))).toMatch(
        /INVALID_ARGUMENT|DEVICE/,
      );
    expect(await codeOf(gatherStats(model, batches, { devices: ['cpu'], resume: limited }))).toBe('INVALID_ARGUMENT');
  });
});

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
