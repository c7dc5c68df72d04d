/**
 * Activation statistics: against the eager-PyTorch reference (test/python/vbp_reference.py), merging, resuming,
 * failures.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  gatherStats,
  loadModel,
  plan,
  prune,
  batches,
  Stats,
  CalibrationError,
  type Dataset,
  type Tensor,
} from '../../lib';
import { asTensor, calibrationBatches, fixture, json, maxAbsDiff, maxRelDiff, npy, tempDir } from '../helpers';

interface RefStats {
  mlps: Array<{ fc1: string; fc2: string; hidden: number; count: number; mean: number[]; var: number[] }>;
}

function compareWithReference(stats: Stats, ref: RefStats): { mean: number; variance: number } {
  expect(stats.layers.map((l) => [l.fc1, l.fc2, l.hidden])).toEqual(ref.mlps.map((m) => [m.fc1, m.fc2, m.hidden]));
  let mean = 0;
  let variance = 0;
  stats.layers.forEach((layer, i) => {
    expect(layer.count).toBe(ref.mlps[i].count);
    mean = Math.max(mean, maxRelDiff(layer.mean, ref.mlps[i].mean));
    variance = Math.max(variance, maxRelDiff(stats.variance(i), ref.mlps[i].var));
  });
  return { mean, variance };
}

describe('gatherStats', () => {
  it.each([
    ['deit_scripted', 'deit'],
    ['deit_traced', 'deit'],
    ['vit_torchvision', 'vit_torchvision'],
  ])('%s: per-neuron count, mean and variance match PyTorch (relative error <= 1e-6)', async (name, ref) => {
    const model = await loadModel(fixture(`${name}.pt`));
    const stats = await gatherStats(model, calibrationBatches());
    const errors = compareWithReference(stats, json<RefStats>('ref', `${ref}.stats.json`));
    expect(errors.mean).toBeLessThanOrEqual(1e-6);
    expect(errors.variance).toBeLessThanOrEqual(1e-6);
    expect(stats.info).toMatchObject({ inputShape: [3, 32, 32], batches: 4, items: 64 });
    expect(stats.tokensPerItem(0)).toBe(name === 'vit_torchvision' ? 17 : 17);
    model.dispose();
  });

  it('never modifies the user model (outputs and parameters unchanged, no tap left behind)', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const input = npy('input_b4.npy');
    const before = asTensor(await model.forward(input));
    const paramsBefore = model.parameters();
    await gatherStats(model, calibrationBatches());
    const after = asTensor(await model.forward(input));
    expect(maxAbsDiff(before.data as Float32Array, after.data as Float32Array)).toBe(0);
    expect(model.parameters()).toEqual(paramsBefore);
    // The model still saves to a file stock PyTorch can read: no custom op was added to it.
    const file = path.join(tempDir(), 'after-stats.pt');
    await model.save(file);
    expect(fs.readFileSync(file).includes(Buffer.from('::tap('))).toBe(false);
    model.dispose();
  });

  it('merges shards exactly: two halves equal one pass (relative error <= 1e-9), and match the reference shards', async () => {
    const model = await loadModel(fixture('deit_traced.pt'));
    const whole = await gatherStats(model, calibrationBatches(0, 4));
    const first = await gatherStats(model, calibrationBatches(0, 2));
    const second = await gatherStats(model, calibrationBatches(2, 2));
    const shard0 = compareWithReference(first, json<RefStats>('ref', 'deit.stats_shard0.json'));
    expect(Math.max(shard0.mean, shard0.variance)).toBeLessThanOrEqual(1e-6);
    const merged = first.merge(second);
    expect(merged.info.items).toBe(64);
    merged.layers.forEach((layer, i) => {
      expect(layer.count).toBe(whole.layers[i].count);
      expect(maxRelDiff(layer.mean, whole.layers[i].mean)).toBeLessThanOrEqual(1e-9);
      expect(maxRelDiff(merged.variance(i), whole.variance(i))).toBeLessThanOrEqual(1e-9);
    });
    model.dispose();
  });

  it('saves to and loads from a safetensors file bit for bit, and the loaded stats merge', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const stats = await gatherStats(model, calibrationBatches(0, 2));
    const file = path.join(tempDir(), 'stats.safetensors');
    await stats.save(file);
    const loaded = await Stats.load(file);
    expect(loaded.info).toEqual(stats.info);
    loaded.layers.forEach((layer, i) => {
      expect(Buffer.from(layer.mean.buffer).equals(Buffer.from(stats.layers[i].mean.buffer))).toBe(true);
      expect(Buffer.from(layer.m2.buffer).equals(Buffer.from(stats.layers[i].m2.buffer))).toBe(true);
      expect(layer.fc1).toBe(stats.layers[i].fc1);
    });
    // The header is plain safetensors: an 8-byte length and JSON with F64 tensors.
    const bytes = fs.readFileSync(file);
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString()) as Record<
      string,
      { dtype: string }
    >;
    expect(header['layers.0.mean'].dtype).toBe('F64');
    expect(loaded.merge(stats).info.batches).toBe(4);
    model.dispose();
  });

  it('refuses to merge statistics of another model', async () => {
    const deit = await loadModel(fixture('deit_scripted.pt'));
    const constant = await loadModel(fixture('deit_constant.pt')); // same architecture, other weights
    const a = await gatherStats(deit, calibrationBatches(0, 1));
    const b = await gatherStats(constant, calibrationBatches(0, 1));
    expect(() => a.merge(b)).toThrow(
      expect.objectContaining({ code: 'STATS', message: expect.stringContaining('weights differ') }),
    );
    deit.dispose();
    constant.dispose();
  });

  it('reports progress, accepts { input } batches and async iterables, stops at maxBatches', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const seen: number[] = [];
    async function* batches(): AsyncGenerator<{ input: Tensor }> {
      for (const input of calibrationBatches()) yield { input };
    }
    const stats = await gatherStats(model, batches(), { maxBatches: 3, onProgress: (p) => seen.push(p.items) });
    expect(seen).toEqual([16, 32, 48]);
    expect(stats.layers[0].count).toBe(48 * 17);
    model.dispose();
  });

  it('can be cancelled with an AbortSignal; the error keeps the partial statistics, which resume', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const controller = new AbortController();
    let error: unknown;
    try {
      await gatherStats(model, calibrationBatches(), {
        signal: controller.signal,
        onProgress: (p) => p.batches === 2 && controller.abort(),
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CalibrationError);
    const partial = (error as CalibrationError).partial!;
    expect((error as CalibrationError).code).toBe('ABORTED');
    expect(partial.info.batches).toBe(2);
    // As the README says: the same batches again, with the partial statistics; the batches they hold are skipped.
    const resumed = await gatherStats(model, calibrationBatches(), { resume: partial });
    const whole = await gatherStats(model, calibrationBatches());
    expect(resumed.info).toEqual(whole.info);
    resumed.layers.forEach((l, i) => {
      expect([l.count, l.items]).toEqual([whole.layers[i].count, whole.layers[i].items]);
      expect(maxRelDiff(resumed.variance(i), whole.variance(i))).toBeLessThanOrEqual(1e-12);
      expect(maxRelDiff(l.mean, whole.layers[i].mean, 1e-6)).toBeLessThanOrEqual(1e-12);
    });
    model.dispose();
  });

  it('resumes batches() of a data set without reading the items the partial statistics hold', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const calib = npy('calib.npy');
    const reads: number[] = [];
    const dataset: Dataset = {
      size: 64,
      itemShape: [3, 32, 32],
      description: 'calib.npy',
      async read(index, target) {
        reads.push(index);
        target.set((calib.data as Float32Array).subarray(index * target.length, (index + 1) * target.length));
        return -1;
      },
    };
    const sequence = batches(dataset, { batchSize: 16 });
    const partial = await gatherStats(model, sequence, { maxBatches: 3 });
    reads.length = 0;
    const resumed = await gatherStats(model, sequence, { resume: partial });
    expect(reads).toEqual(Array.from({ length: 16 }, (_, i) => 48 + i));
    const whole = await gatherStats(model, calibrationBatches());
    expect(resumed.info.items).toBe(64);
    expect(resumed.layers.map((l) => l.count)).toEqual(whole.layers.map((l) => l.count));
    expect(maxRelDiff(resumed.variance(1), whole.variance(1))).toBeLessThanOrEqual(1e-12);
    model.dispose();
  });

  it.each([
    ['seq_first', '[T, B, D]'],
    ['flattened', '[B * T, D]'],
  ])(
    '%s (MLP input %s): tokens per item come from the batches, and plans count the MACs LibTorch measures',
    async (name) => {
      const model = await loadModel(fixture('layouts', `${name}.pt`));
      const x = npy('layouts', 'layout_input.npy'); // [4 items, 6 tokens, 16]
      const stats = await gatherStats(model, [x, x]);
      expect(stats.info.items).toBe(8);
      expect(stats.layers[0].count).toBe(48);
      expect(stats.tokensPerItem(0)).toBe(6);
      const p = plan(stats, { ratio: 0.5 });
      const { model: pruned, report } = await prune(model, p);
      expect(report.macs.before - report.macs.after).toBe(p.totals.macsRemoved);
      expect(report.layers[0].macsBefore - report.layers[0].macsAfter).toBe(p.totals.macsRemoved);
      await Promise.all([model.dispose(), pruned.dispose()]);
    },
  );

  it("counts the model's MACs during the first batch, without a forward of its own: a model that fails at batch 1 calibrates fully", async () => {
    // needs_batch asserts a batch of two or more; MACs used to be counted by a separate forward of one item.
    const model = await loadModel(fixture('layouts', 'needs_batch.pt'));
    const x = npy('layouts', 'layout_input.npy');
    const stats = await gatherStats(model, [x, x]);
    expect(stats.info).toMatchObject({ batches: 2, items: 8 });
    expect(stats.layers[0].count).toBe(48);
    // Per item: the MACs of a forward of the whole batch, divided by its items.
    expect(stats.info.modelMacs).toBe((await model.macs(x.shape)).total / x.shape[0]);
    await expect(model.macs([1, ...x.shape.slice(1)])).rejects.toMatchObject({ code: 'FORWARD' });
    await model.dispose();
  });

  it('the MACs counted in the first calibration batch equal a separate batch-1 count on the DeiT fixture', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const stats = await gatherStats(model, calibrationBatches(0, 2));
    expect(stats.info.modelMacs).toBe((await model.macs([1, 3, 32, 32])).total);
    await model.dispose();
  });

  it('rejects what is not a batch sequence, and unknown options, with INVALID_ARGUMENT', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    await expect(gatherStats(model, 5 as never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('iterable'),
    });
    await expect(gatherStats(model, calibrationBatches(), { maxBatch: 2 } as never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining("'maxBatch'"),
    });
    model.dispose();
  });

  it('rejects a model without MLP blocks with NO_MLP and an empty data set with STATS', async () => {
    const none = await loadModel(fixture('mlp_variants', 'g_no_mlp_scripted.pt'));
    await expect(gatherStats(none, calibrationBatches())).rejects.toMatchObject({ code: 'NO_MLP' });
    none.dispose();
    const model = await loadModel(fixture('deit_scripted.pt'));
    await expect(gatherStats(model, [])).rejects.toMatchObject({ code: 'STATS' });
    model.dispose();
  });
});
