/**
 * Pruned models: against the PyTorch reference, in Node and after torch.jit.load of our file; what the core refuses.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { gatherStats, loadModel, nativeMemory, plan, prune, type Compensation, type Model } from '../../lib';
import { asTensor, calibrationBatches, fixture, json, maxAbsDiff, npy, readPythonOutput, tempDir } from '../helpers';

const dir = tempDir();

async function pruneFixture(
  name: string,
  ratio: number,
  compensation: Compensation,
): Promise<{ source: Model; pruned: Model }> {
  const source = await loadModel(fixture(`${name}.pt`));
  const stats = await gatherStats(source, calibrationBatches());
  const { model: pruned } = await prune(source, plan(stats, { ratio }), { compensation });
  return { source, pruned };
}

describe('prune', () => {
  const cases: Array<[string, string, number, Compensation]> = [];
  for (const [name, ref] of [
    ['deit_scripted', 'deit'],
    ['deit_traced', 'deit'],
    ['vit_torchvision', 'vit_torchvision'],
  ]) {
    for (const ratio of [0.3, 0.5])
      for (const comp of ['mean', 'none'] as Compensation[]) cases.push([name, ref, ratio, comp]);
  }

  it.each(cases)(
    '%s (reference %s) at ratio %s, compensation %s: Node and PyTorch outputs match the reference (<= 1e-4)',
    async (name, ref, ratio, comp) => {
      const { source, pruned } = await pruneFixture(name, ratio, comp);
      const input = npy('input_b4.npy');
      const expected = npy('ref', `${ref}.r${ratio}.${comp}.out_b4.npy`).data as Float32Array;
      const output = asTensor(await pruned.forward(input));
      expect(maxAbsDiff(output.data as Float32Array, expected)).toBeLessThanOrEqual(1e-4);

      const file = path.join(dir, `${name}-${ratio}-${comp}.pt`);
      await pruned.save(file);
      const python = readPythonOutput(file, fixture('input_b4.npy'));
      expect(maxAbsDiff(python.output, expected)).toBeLessThanOrEqual(1e-4);
      // Genuinely smaller: the saved Linear weights have the kept widths.
      const fc1 = Object.entries(python.linear).find(([p]) => p.endsWith('mlp.fc1') || p.endsWith('mlp.0'))!;
      expect(fc1[1].weight_shape[0]).toBeLessThan(name.startsWith('vit') ? 64 : 192);
      source.dispose();
      pruned.dispose();
    },
  );

  it('updates in_features/out_features of scripted Linears to the new widths', async () => {
    const { source, pruned } = await pruneFixture('deit_scripted', 0.5, 'mean');
    const file = path.join(dir, 'meta.pt');
    await pruned.save(file);
    const { linear } = readPythonOutput(file, fixture('input_b1.npy'));
    for (let i = 0; i < 3; i++) {
      const fc1 = linear[`blocks.${i}.mlp.fc1`];
      const fc2 = linear[`blocks.${i}.mlp.fc2`];
      expect(fc1.out_features).toBe(fc1.weight_shape[0]);
      expect(fc2.in_features).toBe(fc2.weight_shape[1]);
      expect(fc2.in_features).toBe(fc1.out_features);
    }
    expect(new Set([0, 1, 2].map((i) => linear[`blocks.${i}.mlp.fc1`].out_features)).size).toBeGreaterThan(1);
    source.dispose();
    pruned.dispose();
  });

  it('ratio 0 leaves outputs bit-identical', async () => {
    for (const name of ['deit_scripted', 'deit_traced', 'vit_torchvision']) {
      const { source, pruned } = await pruneFixture(name, 0, 'mean');
      const input = npy('input_b4.npy');
      const a = asTensor(await source.forward(input)).data as Float32Array;
      const b = asTensor(await pruned.forward(input)).data as Float32Array;
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      source.dispose();
      pruned.dispose();
    }
  });

  it('removing neurons that are constant on the data: mean compensation keeps outputs (<= 1e-5), none changes them', async () => {
    const source = await loadModel(fixture('deit_constant.pt'));
    const constant = json<Record<string, number[]>>('constant_neurons.json');
    const stats = await gatherStats(source, calibrationBatches());
    // Their variance is zero, so variance ranking removes them first.
    const count = Object.values(constant).reduce((s, l) => s + l.length, 0);
    const p = plan(stats, { ratio: count / stats.totalNeurons });
    for (const layer of p.layers) expect(layer.pruned).toEqual([...constant[layer.fc1]].sort((a, b) => a - b));
    const input = npy('input_b4.npy');
    const original = asTensor(await source.forward(input)).data as Float32Array;
    const withMean = await prune(source, p, { compensation: 'mean' });
    const without = await prune(source, p, { compensation: 'none' });
    const meanDiff = maxAbsDiff(asTensor(await withMean.model.forward(input)).data as Float32Array, original);
    const noneDiff = maxAbsDiff(asTensor(await without.model.forward(input)).data as Float32Array, original);
    expect(meanDiff).toBeLessThanOrEqual(1e-5);
    expect(noneDiff).toBeGreaterThan(1e-2);
    source.dispose();
    withMean.model.dispose();
    without.model.dispose();
  });

  it('creates a bias for an fc2 built without one (scripted and traced)', async () => {
    for (const file of ['e_fc2_nobias_scripted.pt', 'e_fc2_nobias_traced.pt']) {
      const source = await loadModel(fixture('mlp_variants', file));
      const x = npy('mlp_variants', 'variant_input.npy');
      const stats = await gatherStats(source, [x]);
      const p = plan(stats, { ratio: 0.5 });
      const none = await prune(source, p, { compensation: 'none' });
      const mean = await prune(source, p, { compensation: 'mean' });
      expect(source.parameters().some((q) => q.name === 'fc2.bias')).toBe(false);
      expect(mean.model.parameters().find((q) => q.name === 'fc2.bias')?.shape).toEqual([16]);
      // The folded means are exactly the difference between the two pruned models' outputs, token by token.
      const a = asTensor(await none.model.forward(x)).data as Float32Array;
      const b = asTensor(await mean.model.forward(x)).data as Float32Array;
      expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-4);
      const saved = path.join(dir, `bias-${file}`);
      await mean.model.save(saved);
      const python = readPythonOutput(saved, fixture('mlp_variants', 'variant_input.npy'));
      expect(maxAbsDiff(python.output, b)).toBeLessThanOrEqual(1e-6);
      source.dispose();
      none.model.dispose();
      mean.model.dispose();
    }
  });

  it('accounts parameters and MACs before and after, matching the analytic counts', async () => {
    const source = await loadModel(fixture('deit_traced.pt'));
    const stats = await gatherStats(source, calibrationBatches());
    const p = plan(stats, { ratio: 0.5 });
    const { model: pruned, report } = await prune(source, p);
    const analytic = json<Record<string, number>>('macs_deit.json');
    expect(report.macs.before).toBe(analytic.total);
    expect(report.parameters.before).toBe(analytic.params);
    const removedNeurons = p.totals.pruned;
    // Per neuron: 17 tokens x (48 in + 48 out) MACs; 48 + 1 + 48 parameters.
    expect(report.macs.before - report.macs.after).toBe(removedNeurons * 17 * 96);
    expect(report.parameters.before - report.parameters.after).toBe(removedNeurons * 97);
    expect(report.layers.map((l) => l.hiddenAfter)).toEqual(p.layers.map((l) => l.keep.length));
    expect(report.layers[0].macsBefore).toBe(analytic.fc1 / 3 + analytic.fc2 / 3);
    expect(report.neurons).toEqual({ before: 576, after: 576 - removedNeurons });
    source.dispose();
    pruned.dispose();
  });

  it('never modifies the input model file', async () => {
    const file = path.join(dir, 'input-copy.pt');
    fs.copyFileSync(fixture('deit_scripted.pt'), file);
    const digest = (): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const before = digest();
    const source = await loadModel(file);
    const stats = await gatherStats(source, calibrationBatches(0, 1));
    const { model } = await prune(source, plan(stats, { ratio: 0.5 }));
    await model.save(path.join(dir, 'pruned-from-copy.pt'));
    expect(digest()).toBe(before);
    source.dispose();
    model.dispose();
  });

  it('takes the MACs from the plan without a forward; measureMacs counts them, and a failure then releases the new model', async () => {
    const model = await loadModel(fixture('layouts', 'needs_batch.pt'));
    const x = npy('layouts', 'layout_input.npy');
    const stats = await gatherStats(model, [x]);
    const p = plan(stats, { ratio: 0.5 });
    const before = nativeMemory().liveModels;
    // needs_batch fails on one item: measuring at batch 1 fails after slicing, and the new model is released.
    await expect(prune(model, p, { measureMacs: true })).rejects.toMatchObject({ code: 'FORWARD' });
    expect(nativeMemory().liveModels).toBe(before);
    const { model: pruned, report } = await prune(model, p);
    expect(report.macs).toMatchObject({
      source: 'plan',
      before: p.modelMacs,
      after: p.modelMacs - p.totals.macsRemoved,
    });
    // The plan's figure equals a count of the pruned model's ops (on a batch it accepts).
    expect(report.macs.after).toBe((await pruned.macs(x.shape)).total / x.shape[0]);
    expect(nativeMemory().liveModels).toBe(before + 1);
    await expect(prune(model, p, { measureMacs: true, skipMacs: true })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await Promise.all([model.dispose(), pruned.dispose()]);
  });

  it('the native core checks the cuts it is given: one cut per layer, whole-number indices, finite means', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    // The raw addon handle, below prune()'s own checks: what a caller that skipped them would pass.
    const handle = (model as unknown as { handle: { prune(cuts: unknown, compensation: string): Promise<unknown> } })
      .handle;
    // Arguments are checked on the calling thread (a synchronous throw), the cuts against the model in the job.
    const attempt = (cuts: unknown[]): Promise<unknown> => Promise.resolve().then(() => handle.prune(cuts, 'mean'));
    const cut = (keep: ArrayLike<number>, fc1 = 'blocks.0.mlp.fc1', fc2 = 'blocks.0.mlp.fc2') => ({
      fc1,
      fc2,
      keep: Float64Array.from(keep),
      prunedMeans: new Float64Array(192 - keep.length),
    });
    const half = Array.from({ length: 96 }, (_, i) => 2 * i);
    await expect(attempt([cut(half), cut(half)])).rejects.toMatchObject({
      code: 'PLAN',
      message: expect.stringContaining('more than once'),
    });
    await expect(attempt([cut([0, Number.NaN, 5])])).rejects.toMatchObject({
      code: 'PLAN',
      message: expect.stringContaining('not a neuron index'),
    });
    await expect(attempt([cut([0, 2.5, 5])])).rejects.toMatchObject({
      code: 'PLAN',
      message: expect.stringContaining('not a neuron index'),
    });
    const nanMeans = { ...cut(half), prunedMeans: new Float64Array(96).fill(Number.NaN) };
    await expect(attempt([nanMeans])).rejects.toMatchObject({ code: 'PLAN', message: expect.stringContaining('NaN') });
    await model.dispose();
  });
});
