/**
 * Half-precision models on CPU: a bfloat16 TorchScript model takes float32 inputs (cast to its type), its
 * statistics are gathered in float64, compensation is computed in float64 and cast back, and the pruned
 * model stays bfloat16. (float16 convolutions have no CPU kernel in LibTorch: the
 * GPU check covers them.)
 */
import path from 'node:path';
import { gatherStats, loadModel, plan, prune } from '../lib';
import { asTensor, calibrationBatches, fixture, maxAbsDiff, npy, tempDir } from './helpers';

const dir = tempDir('torch-vbp-half-');

describe('bfloat16 models on CPU', () => {
  it('forward on float32 inputs equals PyTorch on bfloat16 inputs, bit for bit', async () => {
    const model = await loadModel(fixture('deit_bf16.pt'));
    const output = asTensor(await model.forward(npy('input_b4.npy')));
    expect(output.dtype).toBe('float32');
    expect(maxAbsDiff(output.data as Float32Array, npy('out_deit_bf16_b4.npy').data as Float32Array)).toBe(0);
    await model.dispose();
  });

  it('statistics in float64, compensation in float64 cast back: the pruned model stays bfloat16, close to the float32 path, and saves and reloads unchanged', async () => {
    const half = await loadModel(fixture('deit_bf16.pt'));
    const full = await loadModel(fixture('deit_scripted.pt'));
    const halfStats = await gatherStats(half, calibrationBatches());
    const fullStats = await gatherStats(full, calibrationBatches());
    expect(Object.prototype.toString.call(halfStats.layers[0].mean)).toBe('[object Float64Array]');
    // The same plan for both (from the float32 statistics), so that only the precision differs.
    const p = plan(fullStats, { ratio: 0.5 });
    const { model: prunedHalf } = await prune(half, { ...p, model: halfStats.signature });
    const { model: prunedFull } = await prune(full, p);
    expect(prunedHalf.parameters().every((q) => q.dtype === 'bfloat16')).toBe(true);
    const input = npy('input_b4.npy');
    const a = asTensor(await prunedHalf.forward(input)).data as Float32Array;
    const b = asTensor(await prunedFull.forward(input)).data as Float32Array;
    const scale = Math.max(...Array.from(b, Math.abs));
    // bfloat16 keeps 8 bits of mantissa: measured 1.8e-2 of the largest logit here.
    expect(maxAbsDiff(a, b) / scale).toBeLessThan(5e-2);
    const file = path.join(dir, 'pruned-bf16.pt');
    await prunedHalf.save(file);
    const reloaded = await loadModel(file);
    expect(maxAbsDiff(asTensor(await reloaded.forward(input)).data as Float32Array, a)).toBe(0);
    await Promise.all([half.dispose(), full.dispose(), prunedHalf.dispose(), prunedFull.dispose(), reloaded.dispose()]);
  });
});
