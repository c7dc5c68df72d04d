/**
 * Models written by prune() and finetune(), as PyTorch and a reader of their card see them (issue 21, part C).
 */
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { finetune, gatherStats, loadModel, plan, prune, type Tensor } from '../lib';
import { calibrationBatches, fixture, python, repoRoot, tempDir } from './helpers';

/** What stock PyTorch says of a saved model's parameters: how many, and how many require grad. */
function requiresGradInPyTorch(file: string): { parameters: number; requiresGrad: number } {
  const script =
    'import json, sys, torch\nm = torch.jit.load(sys.argv[1])\nps = list(m.parameters())\nprint(json.dumps({"parameters": len(ps), "requiresGrad": sum(p.requires_grad for p in ps)}))';
  return JSON.parse(execFileSync(python, ['-c', script, file], { encoding: 'utf8' }).trim()) as {
    parameters: number;
    requiresGrad: number;
  };
}

describe('requires_grad in written models (C13)', () => {
  it.each([0, 0.5])('prune at ratio %s keeps every parameter trainable in PyTorch, as in the input', async (ratio) => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const stats = await gatherStats(model, calibrationBatches());
    const { model: pruned } = await prune(model, plan(stats, { ratio }));
    const file = path.join(tempDir(), 'pruned.pt');
    await pruned.save(file);
    await Promise.all([model.dispose(), pruned.dispose()]);
    const input = requiresGradInPyTorch(fixture('deit_scripted.pt'));
    expect(input.requiresGrad).toBe(input.parameters);
    expect(requiresGradInPyTorch(file)).toEqual(input);
  });

  it('finetune keeps them as in the model it was given, also for a frozen subset', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const [batch] = calibrationBatches(0, 1);
    const labels = Int32Array.from({ length: 16 }, (_, i) => i % 10);
    const data = async function* () {
      yield { input: batch as Tensor<Float32Array>, labels };
    };
    const { model: tuned } = await finetune(model, {
      data,
      epochs: 1,
      lr: 1e-4,
      schedule: 'constant',
      trainable: 'mlp',
    });
    const file = path.join(tempDir(), 'tuned.pt');
    await tuned.save(file);
    await Promise.all([model.dispose(), tuned.dispose()]);
    expect(requiresGradInPyTorch(file)).toEqual(requiresGradInPyTorch(fixture('deit_scripted.pt')));
  });
});

describe("a pruned model's card (C14)", () => {
  it('updates the parameter count and MLP widths, and keeps the original measurements under the pruning note', async () => {
    const model = await loadModel(path.join(repoRoot, 'models', 'deit_fmnist.pt'));
    const original = model.card!;
    const calibration = {
      data: new Float32Array(32 * 28 * 28).map((_, i) => Math.sin(i) * 0.5),
      shape: [32, 1, 28, 28],
    };
    const stats = await gatherStats(model, [calibration]);
    const { model: pruned } = await prune(model, plan(stats, { ratio: 0.5, scope: 'per-layer' }));
    try {
      const card = pruned.card!;
      expect(card.parameters).toBe(pruned.parameterCount());
      expect(card.parameters).toBeLessThan(original.parameters as number);
      expect(card).not.toHaveProperty('test_top1');
      expect(card).not.toHaveProperty('test_top5');
      expect((card.architecture as Record<string, unknown>).mlp_hidden).toBe(64);
      const note = (card.pruning as Array<Record<string, unknown>>).at(-1)!;
      expect(note.original).toEqual({
        parameters: original.parameters,
        test_top1: original.test_top1,
        test_top5: original.test_top5,
        eval_seconds_10k_test: original.eval_seconds_10k_test,
        mlp_hidden: (original.architecture as Record<string, unknown>).mlp_hidden,
      });
      // What the model expects is unchanged.
      expect({ mean: card.mean, std: card.std, classes: card.classes }).toEqual({
        mean: original.mean,
        std: original.std,
        classes: original.classes,
      });
    } finally {
      await Promise.all([model.dispose(), pruned.dispose()]);
    }
  });
});
