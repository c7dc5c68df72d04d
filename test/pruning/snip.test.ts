/**
 * SNIP, the criterion of the paper's ablation that the others do not cover: scores against an eager PyTorch
 * reference (test/python/snip_reference.py), the plan it makes, its place in the statistics file and in merges.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Stats, gatherStats, loadModel, plan, readTensors, type Model, type Tensor } from '../../lib';
import { formatNpy } from '../../lib/formats/npy';
import { calibrationBatches, codeOf, fixture, FIXTURE_CONFIG, runPython, tempDir, vbp } from '../helpers';

const dir = tempDir();

/** The fixture's calibration batches with labels (i * 7 mod 10), as { input, labels }. */
function labelled(
  first: number,
  count: number,
): Array<{ input: ReturnType<typeof calibrationBatches>[number]; labels: Int32Array }> {
  return calibrationBatches(first, count).map((input, b) => ({
    input,
    labels: Int32Array.from({ length: input.shape[0] }, (_, i) => ((first + b) * 16 + i) % 10),
  }));
}

function relative(a: Float64Array, b: Float64Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / scale;
}

describe("criterion 'snip'", () => {
  let model: Model;
  let stats: Stats;
  beforeAll(async () => {
    model = await loadModel(fixture('deit_scripted.pt'));
    stats = await gatherStats(model, labelled(0, 4), { snip: true });
  });
  afterAll(() => model.dispose());

  it('scores equal eager PyTorch: sum over the fc1 row of |w * dL/dw|, cross-entropy per batch, summed (1e-9)', async () => {
    const batches = labelled(0, 4);
    const inputs = path.join(dir, 'snip-inputs.npy');
    const labels = path.join(dir, 'snip-labels.npy');
    const data = new Float32Array(batches.length * batches[0].input.data.length);
    batches.forEach((b, i) => data.set(b.input.data as Float32Array, i * b.input.data.length));
    fs.writeFileSync(inputs, formatNpy({ data, shape: [4, 16, 3, 32, 32], dtype: 'float32' }));
    const all = new Int32Array(4 * 16);
    batches.forEach((b, i) => all.set(b.labels, i * 16));
    fs.writeFileSync(labels, formatNpy({ data: all, shape: [4, 16], dtype: 'int32' }));
    const out = path.join(dir, 'snip-reference.npz');
    runPython('snip_reference.py', [
      '--model',
      fixture('deit_scripted.pt'),
      '--config',
      JSON.stringify(FIXTURE_CONFIG),
      '--inputs',
      inputs,
      '--labels',
      labels,
      '--out',
      out,
    ]);
    const reference = (await readTensors(out)) as Record<string, Tensor>;
    stats.layers.forEach((layer, i) => {
      expect(layer.saliencyBatches).toBe(4);
      expect(relative(layer.saliency!, reference[`block${i}`].data as Float64Array)).toBeLessThanOrEqual(1e-9);
      expect(Math.min(...layer.saliency!)).toBeGreaterThan(0);
    });
  });

  it('plans remove the neurons of lowest score, ranked globally', () => {
    const p = plan(stats, { criterion: 'snip', ratio: 0.5 });
    let highestRemoved = -Infinity;
    let lowestKept = Infinity;
    p.layers.forEach((layer, i) => {
      const removed = new Set(layer.pruned);
      stats.layers[i].saliency!.forEach((score, j) => {
        if (removed.has(j)) highestRemoved = Math.max(highestRemoved, score);
        else lowestKept = Math.min(lowestKept, score);
      });
    });
    expect(highestRemoved).toBeLessThanOrEqual(lowestKept);
  });

  it('travel in the statistics file and merge by addition: two shards equal one pass (1e-12)', async () => {
    const reread = Stats.fromBuffer(stats.toBuffer());
    reread.layers.forEach((layer, i) => expect(layer.saliency).toEqual(stats.layers[i].saliency));
    const merged = (await gatherStats(model, labelled(0, 2), { snip: true })).merge(
      await gatherStats(model, labelled(2, 2), { snip: true }),
    );
    merged.layers.forEach((layer, i) => {
      expect(layer.saliencyBatches).toBe(4);
      expect(relative(layer.saliency!, stats.layers[i].saliency!)).toBeLessThanOrEqual(1e-12);
    });
  });

  it('vbp: stats --snip then prune --criterion snip --stats; statistics without scores are bad usage of --criterion', () => {
    const model = path.join(__dirname, '..', '..', 'models', 'deit_fmnist.pt');
    const withScores = path.join(dir, 'cli-snip.safetensors');
    const without = path.join(dir, 'cli-plain.safetensors');
    const data = ['--data', 'fashion-mnist', '--limit', '64'];
    expect(vbp(['stats', model, ...data, '--snip', '--out', withScores]).status).toBe(0);
    expect(vbp(['stats', model, ...data, '--out', without]).status).toBe(0);
    expect(Stats.fromBuffer(fs.readFileSync(withScores)).layers.every((l) => l.saliencyBatches === 1)).toBe(true);
    const pruned = vbp([
      'prune',
      model,
      '--stats',
      withScores,
      '--criterion',
      'snip',
      '--ratio',
      '0.5',
      '--out',
      path.join(dir, 'cli-snip.pt'),
    ]);
    expect({ status: pruned.status, stderr: pruned.stderr }).toEqual({ status: 0, stderr: '' });
    const refused = vbp([
      'prune',
      model,
      '--stats',
      without,
      '--criterion',
      'snip',
      '--ratio',
      '0.5',
      '--out',
      path.join(dir, 'x.pt'),
    ]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--criterion');
  });

  it('without SNIP scores the criterion is STATS; unlabelled batches are DATA', async () => {
    const plain = await gatherStats(model, calibrationBatches(0, 1));
    expect(() => plan(plain, { criterion: 'snip', ratio: 0.5 })).toThrow(expect.objectContaining({ code: 'STATS' }));
    expect(await codeOf(gatherStats(model, calibrationBatches(0, 1), { snip: true }))).toBe('DATA');
  });
});
