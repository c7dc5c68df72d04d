/**
 * Least-squares compensation against the eager-PyTorch reference (test/python/vbp_reference.py): covariance
 * statistics, compensated fc2 weights and biases, pruned outputs in Node and after torch.jit.load; a
 * property measured in PyTorch on the calibration data; shards; the compensated selection; and what it
 * refuses. vbp prune --compensation lsq is in test/cli/prune-lsq.test.ts.
 */
import path from 'node:path';
import {
  autoCovarianceSampling,
  gatherStats,
  loadModel,
  plan,
  planCompensated,
  prune,
  Stats,
  type Model,
  type Tensor,
} from '../../lib';
import {
  asTensor,
  calibrationBatches,
  fixture,
  json,
  maxAbsDiff,
  npy,
  readPythonOutput,
  runPython,
  tempDir,
} from '../helpers';

const dir = tempDir('torch-vbp-lsq-');
const REFERENCE_RIDGE = 1e-3; // test/python/vbp_reference.py

/** Largest |a - b| as a share of the largest |b|. */
function relativeToLargest(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < b.length; i++) largest = Math.max(largest, Math.abs(b[i]));
  return maxAbsDiff(a, b) / largest;
}

describe('covariance statistics', () => {
  it.each([
    ['deit_scripted', 'deit'],
    ['deit_traced', 'deit'],
    ['vit_torchvision', 'vit_torchvision'],
  ])(
    "%s: every block's covariance equals PyTorch's (<= 1e-6 of the largest entry; float32 products <= 1e-5)",
    async (name, ref) => {
      const model = await loadModel(fixture(`${name}.pt`));
      const stats = await gatherStats(model, calibrationBatches(), { covariance: true });
      const fast = await gatherStats(model, calibrationBatches(), { covariance: true, covarianceProduct: 'float32' });
      stats.layers.forEach((layer, i) => {
        const expected = npy('ref', `${ref}.cov${i}.npy`).data as Float64Array;
        expect(relativeToLargest(stats.covariance(i), expected)).toBeLessThanOrEqual(1e-6);
        expect(relativeToLargest(fast.covariance(i), expected)).toBeLessThanOrEqual(1e-5);
        // Its diagonal is the variance the statistics always had.
        expect(
          maxAbsDiff(
            Float64Array.from({ length: layer.hidden }, (_, j) => stats.covariance(i)[j * layer.hidden + j]),
            stats.variance(i),
          ),
        ).toBeLessThanOrEqual(1e-9);
      });
      expect(stats.covarianceBytes).toBe(stats.layers.reduce((n, l) => n + l.hidden * l.hidden * 8, 0));
      await model.dispose();
    },
  );

  it('shards merge exactly into one pass (relative <= 1e-9), and survive a safetensors round trip bit for bit', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const whole = await gatherStats(model, calibrationBatches(), { covariance: true });
    const first = await gatherStats(model, calibrationBatches(0, 2), { covariance: true });
    const second = await gatherStats(model, calibrationBatches(2, 2), { covariance: true });
    const file = path.join(dir, 'first.safetensors');
    await first.save(file);
    const loaded = await Stats.load(file);
    expect(Array.from(loaded.layers[1].comoment!)).toEqual(Array.from(first.layers[1].comoment!));
    const merged = loaded.merge(second);
    merged.layers.forEach((_, i) =>
      expect(relativeToLargest(merged.covariance(i), whole.covariance(i))).toBeLessThanOrEqual(1e-9),
    );
    const plain = await gatherStats(model, calibrationBatches(2, 2));
    expect(() => first.merge(plain)).toThrow(
      expect.objectContaining({ code: 'STATS', message: expect.stringContaining('covariance') }),
    );
    await model.dispose();
  });

  it('sampling: a deterministic share of the tokens, its own count and mean, close to the full covariance; auto samples only wide blocks', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const full = await gatherStats(model, calibrationBatches(), { covariance: true, covarianceSampling: 1 });
    const half = await gatherStats(model, calibrationBatches(), { covariance: true, covarianceSampling: 0.5 });
    const again = await gatherStats(model, calibrationBatches(), { covariance: true, covarianceSampling: 0.5 });
    expect(Array.from(again.layers[0].comoment!)).toEqual(Array.from(half.layers[0].comoment!));
    half.layers.forEach((l, i) => {
      expect(l.count).toBe(full.layers[i].count); // mean and variance still use every token
      expect(l.comomentCount! / l.count).toBeGreaterThan(0.45);
      expect(l.comomentCount! / l.count).toBeLessThan(0.55);
      expect(relativeToLargest(half.covariance(i), full.covariance(i))).toBeLessThan(0.1);
    });
    const file = path.join(dir, 'half.safetensors');
    await half.save(file);
    const loaded = await Stats.load(file);
    expect(loaded.layers[2].comomentCount).toBe(half.layers[2].comomentCount);
    expect(Array.from(loaded.covariance(2))).toEqual(Array.from(half.covariance(2)));
    // 'auto' (the default): every token for these 192-neuron blocks, a quarter for DeiT-B's 3,072.
    const auto = await gatherStats(model, calibrationBatches(), { covariance: true });
    expect(auto.layers.map((l) => l.comomentCount)).toEqual(full.layers.map((l) => l.count));
    expect([autoCovarianceSampling(192), autoCovarianceSampling(3072)]).toEqual([1, 0.25]);
    await model.dispose();
  });

  it('refuses, before any batch, covariance matrices larger than maxCovarianceBytes', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    let pulled = 0;
    function* counted(): Generator<Tensor> {
      for (const batch of calibrationBatches()) {
        pulled++;
        yield batch;
      }
    }
    // 3 blocks of 192 neurons: 3 * 192 * 192 * 8 bytes = 864 KiB.
    await expect(
      gatherStats(model, counted(), { covariance: true, maxCovarianceBytes: 800 * 1024 }),
    ).rejects.toMatchObject({
      code: 'STATS',
      message: expect.stringMatching(/needs 1 MiB, more than maxCovarianceBytes/),
    });
    expect(pulled).toBe(0);
    await model.dispose();
  });
});

describe("compensation 'lsq'", () => {
  const cases: Array<[string, string, number]> = [];
  for (const [name, ref] of [
    ['deit_scripted', 'deit'],
    ['deit_traced', 'deit'],
    ['vit_torchvision', 'vit_torchvision'],
  ]) {
    for (const ratio of [0.3, 0.5]) cases.push([name, ref, ratio]);
  }

  it.each(cases)(
    '%s (reference %s) at ratio %s: fc2 weights and biases equal the reference (<= 1e-5 relative), outputs in Node and PyTorch (<= 1e-4)',
    async (name, ref, ratio) => {
      const model = await loadModel(fixture(`${name}.pt`));
      const stats = await gatherStats(model, calibrationBatches(), { covariance: true });
      const p = plan(stats, { ratio });
      const { model: pruned } = await prune(model, p, { compensation: 'lsq', ridge: REFERENCE_RIDGE, stats });
      for (const [i, layer] of p.layers.entries()) {
        const weight = await pruned.parameter(`${layer.fc2}.weight`);
        const bias = await pruned.parameter(`${layer.fc2}.bias`);
        expect(weight.shape).toEqual([layer.outFeatures, layer.keep.length]);
        expect(
          relativeToLargest(
            weight.data as Float32Array,
            npy('ref', `${ref}.r${ratio}.lsq.fc2_${i}.weight.npy`).data as Float32Array,
          ),
        ).toBeLessThanOrEqual(1e-5);
        expect(
          relativeToLargest(
            bias.data as Float32Array,
            npy('ref', `${ref}.r${ratio}.lsq.fc2_${i}.bias.npy`).data as Float32Array,
          ),
        ).toBeLessThanOrEqual(1e-5);
      }
      const input = npy('input_b4.npy');
      const expected = npy('ref', `${ref}.r${ratio}.lsq.out_b4.npy`).data as Float32Array;
      expect(maxAbsDiff(asTensor(await pruned.forward(input)).data as Float32Array, expected)).toBeLessThanOrEqual(
        1e-4,
      );
      const saved = path.join(dir, `${name}-${ratio}-lsq.pt`);
      await pruned.save(saved);
      expect(maxAbsDiff(readPythonOutput(saved, fixture('input_b4.npy')).output, expected)).toBeLessThanOrEqual(1e-4);
      await Promise.all([model.dispose(), pruned.dispose()]);
    },
  );

  it('on the calibration data, every block loses less of its output with lsq (ridge -> 0) than with the mean shift, at several ratios (measured in PyTorch)', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const stats = await gatherStats(model, calibrationBatches(), { covariance: true });
    const files: Record<string, string> = {};
    for (const ratio of [0.3, 0.5, 0.7, 0.9]) {
      const p = plan(stats, { ratio });
      for (const compensation of ['mean', 'lsq'] as const) {
        const { model: pruned } = await prune(
          model,
          p,
          compensation === 'lsq' ? { compensation, ridge: 1e-9, stats } : { compensation },
        );
        files[`${ratio}.${compensation}`] = path.join(dir, `property-${ratio}-${compensation}.pt`);
        await pruned.save(files[`${ratio}.${compensation}`]);
        await pruned.dispose();
      }
    }
    const errors = JSON.parse(
      runPython('block_errors.py', [path.dirname(fixture('calib.npy')), ...Object.values(files)]),
    ) as Record<string, number[]>;
    for (const ratio of [0.3, 0.5, 0.7, 0.9]) {
      const mean = errors[files[`${ratio}.mean`]];
      const lsq = errors[files[`${ratio}.lsq`]];
      expect(mean).toHaveLength(3);
      // Float32 rounding of the saved weights is the only slack (1e-6 of the error).
      lsq.forEach((e, block) =>
        expect({ ratio, block, better: e <= mean[block] * (1 + 1e-6) }).toEqual({ ratio, block, better: true }),
      );
      expect(lsq.reduce((a, b) => a + b, 0)).toBeLessThan(0.8 * mean.reduce((a, b) => a + b, 0));
    }
    await model.dispose();
  });

  it("refuses what it cannot do right: no statistics, none with covariance, another model's, a singular block, NaN activations, bad ridges", async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const stats = await gatherStats(model, calibrationBatches(0, 2), { covariance: true });
    const p = plan(stats, { ratio: 0.5 });
    await expect(prune(model, p, { compensation: 'lsq' })).rejects.toMatchObject({
      code: 'STATS',
      message: expect.stringContaining('`stats`'),
    });
    const plain = await gatherStats(model, calibrationBatches(0, 2));
    await expect(prune(model, p, { compensation: 'lsq', stats: plain })).rejects.toMatchObject({
      code: 'STATS',
      message: expect.stringContaining('covariance: true'),
    });
    await expect(prune(model, p, { compensation: 'lsq', stats, ridge: -1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(prune(model, p, { compensation: 'mean', ridge: 1e-3 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const vit = await loadModel(fixture('vit_torchvision.pt'));
    const vitStats = await gatherStats(vit, calibrationBatches(0, 1), { covariance: true });
    await expect(prune(model, p, { compensation: 'lsq', stats: vitStats })).rejects.toMatchObject({
      code: 'STATS',
      message: expect.stringContaining('another model'),
    });

    // deit_constant: 24 neurons per block are constant; kept (magnitude ranking keeps them), they make
    // C[K, K] singular, which a zero ridge cannot solve.
    const constant: Model = await loadModel(fixture('deit_constant.pt'));
    const constantStats = await gatherStats(constant, calibrationBatches(), { covariance: true });
    const keepsConstant = plan(constantStats, { ratio: 0.3, criterion: 'magnitude' });
    await expect(
      prune(constant, keepsConstant, { compensation: 'lsq', ridge: 0, stats: constantStats }),
    ).rejects.toMatchObject({
      code: 'PRUNE',
      message: expect.stringMatching(/blocks\.\d\.mlp\.fc1 -> .*singular.*ridge > 0/),
    });
    const { model: solved } = await prune(constant, keepsConstant, {
      compensation: 'lsq',
      ridge: 1e-6,
      stats: constantStats,
    });

    const [clean, dirty] = calibrationBatches(0, 2);
    dirty.data[3] = Number.NaN;
    const nanStats = await gatherStats(model, [clean, dirty], { covariance: true });
    await expect(
      prune(model, plan(stats, { ratio: 0.5 }), { compensation: 'lsq', stats: nanStats }),
    ).rejects.toMatchObject({ code: 'NON_FINITE' });
    await Promise.all([model, vit, constant, solved].map((m) => m.dispose()));
  });
});

describe('planCompensated', () => {
  it('selects exactly the neurons of the reference greedy (recomputed from scratch at every step in PyTorch)', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const stats = await gatherStats(model, calibrationBatches(), { covariance: true });
    const p = await planCompensated(model, stats, { ratio: 0.3, ridge: 1e-4 });
    const ref = json<{ pruned: Record<string, number[]> }>('ref', 'deit.r0.3.compensated.plan.json');
    expect(p.criterion).toBe('compensated');
    for (const layer of p.layers) expect(layer.pruned).toEqual(ref.pruned[layer.fc1]);
    expect(p.totals.pruned).toBe(Math.floor(0.3 * 576));
    // On the calibration data, the blocks lose less output than with variance ranking (both with least squares).
    const files = { variance: path.join(dir, 'sel-variance.pt'), compensated: path.join(dir, 'sel-compensated.pt') };
    for (const [name, chosen] of [
      ['variance', plan(stats, { ratio: 0.7 })],
      ['compensated', await planCompensated(model, stats, { ratio: 0.7 })],
    ] as const) {
      const { model: pruned } = await prune(model, chosen, { compensation: 'lsq', stats });
      await pruned.save(files[name]);
      await pruned.dispose();
    }
    const errors = JSON.parse(
      runPython('block_errors.py', [path.dirname(fixture('calib.npy')), files.variance, files.compensated]),
    ) as Record<string, number[]>;
    const total = (file: string): number => errors[file].reduce((a, b) => a + b, 0);
    expect(total(files.compensated)).toBeLessThan(total(files.variance));
    await expect(
      planCompensated(model, await gatherStats(model, calibrationBatches(0, 1)), { ratio: 0.3 }),
    ).rejects.toMatchObject({ code: 'STATS' });
    await expect(planCompensated(model, stats, { ratio: 0.999 })).rejects.toMatchObject({
      code: 'PLAN',
      message: expect.stringContaining('at most'),
    });
    await model.dispose();
  });
});
