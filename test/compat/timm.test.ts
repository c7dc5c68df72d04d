/**
 * timm's real model code (timm 1.0.29: DeiT-S, ViT-S, Swin-T with random weights, scripted by
 * scripts/export_deit.py --no-pretrained), through discovery, statistics, mean and least-squares pruning, the
 * pruned model against torch.jit.load in the same PyTorch, and a fine-tuning step through timm's fused
 * attention (scaled_dot_product_attention). Runs in `npm run test:compat` against the CUDA wheel's LibTorch
 * 2.14.1 on the CPU; VBP_TIMM_PYTHON is that venv's Python, which exports and checks the models.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { finetune, formatNpy, gatherStats, loadModel, plan, prune, readNpy, type Model, type Tensor } from '../../lib';
import { repoRoot, tempDir } from '../helpers';

const timmPython = process.env.VBP_TIMM_PYTHON ?? '';
const MODELS = ['deit_small_patch16_224', 'vit_small_patch16_224', 'swin_tiny_patch4_window7_224'];
const BATCH = 2;

/** Deterministic images of the model's input size (not random: the same bytes on every run). */
function images(count: number, offset: number): Tensor<Float32Array> {
  const per = 3 * 224 * 224;
  const data = new Float32Array(count * per);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin((i + offset) * 0.0137) * 1.5;
  return { data, shape: [count, 3, 224, 224] };
}

/** The logits stock PyTorch (the venv's) computes for `input` with the model saved at `file`. */
function pytorchLogits(file: string, input: string, out: string): Tensor {
  const script = [
    'import sys, numpy as np, torch',
    'torch.set_num_threads(1)',
    'm = torch.jit.load(sys.argv[1]).eval()',
    'with torch.no_grad():',
    '    y = m(torch.from_numpy(np.load(sys.argv[2])))',
    'np.save(sys.argv[3], y.numpy())',
  ].join('\n');
  execFileSync(timmPython, ['-c', script, file, input, out]);
  return readNpy(out);
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe("timm's real models on a LibTorch 2.x build", () => {
  const dir = tempDir('torch-vbp-timm-');

  beforeAll(() => {
    if (!timmPython)
      throw new Error('VBP_TIMM_PYTHON (a Python with torch 2.x and timm) is not set: run npm run test:compat');
  });

  describe.each(MODELS)('%s', (name) => {
    const file = path.join(dir, `${name}.pt`);
    let model: Model;

    beforeAll(async () => {
      execFileSync(timmPython, [
        path.join(repoRoot, 'scripts', 'export_deit.py'),
        '--timm',
        name,
        '--no-pretrained',
        '--seed',
        '0',
        '--out',
        file,
      ]);
      model = await loadModel(file);
    }, 300000);

    afterAll(async () => {
      await model?.dispose();
    });

    it('finds its 12 MLP blocks by graph structure', async () => {
      const blocks = await model.mlps();
      expect(blocks).toHaveLength(12);
    });

    it.each(['mean', 'lsq'] as const)(
      'statistics, a 50 %% plan and %s compensation give a model that torch.jit.load runs to the same logits',
      async (compensation) => {
        const stats = await gatherStats(model, [images(BATCH, 0), images(BATCH, 7)], {
          covariance: compensation === 'lsq',
        });
        const chosen = plan(stats, { ratio: 0.5 });
        const { model: pruned } = await prune(model, chosen, {
          compensation,
          ...(compensation === 'lsq' ? { stats } : {}),
        });
        const saved = path.join(dir, `${name}-${compensation}.pt`);
        await pruned.save(saved);
        const input = images(BATCH, 99);
        const inputFile = path.join(dir, `${name}-input.npy`);
        fs.writeFileSync(inputFile, formatNpy(input));
        const ours = (await pruned.forward(input)) as Tensor<Float32Array>;
        const prunedWidths = (await pruned.mlps()).map((b) => b.hidden);
        await pruned.dispose();
        const theirs = pytorchLogits(saved, inputFile, path.join(dir, `${name}-${compensation}-logits.npy`));
        expect(theirs.shape).toEqual([BATCH, 1000]);
        // Same LibTorch, same kernels, one thread: the same numbers.
        expect(maxAbs(ours.data, theirs.data as Float32Array)).toBeLessThanOrEqual(1e-5);
        // A global ranking: widths differ per block, their sum is half of the original's.
        expect(prunedWidths).toEqual(chosen.layers.map((l) => l.keep.length));
        const total = (widths: number[]) => widths.reduce((a, b) => a + b, 0);
        const original = total((await model.mlps()).map((b) => b.hidden));
        expect(Math.abs(total(prunedWidths) - original / 2)).toBeLessThanOrEqual(12);
      },
      300000,
    );

    it('takes a fine-tuning step through its attention', async () => {
      const batch = images(BATCH, 3);
      const labels = Int32Array.from({ length: BATCH }, (_, i) => i);
      const { model: tuned, report } = await finetune(model, {
        data: async function* () {
          yield { input: batch, labels };
        },
        epochs: 1,
        lr: 1e-4,
        schedule: 'constant',
      });
      const before = await model.forward(batch);
      const after = await tuned.forward(batch);
      await tuned.dispose();
      expect(report.steps).toBe(1);
      expect(Number.isFinite(report.loss[0])).toBe(true);
      expect(report.gradNorm[0]).toBeGreaterThan(0);
      expect(maxAbs((before as Tensor<Float32Array>).data, (after as Tensor<Float32Array>).data)).toBeGreaterThan(0);
    }, 300000);
  });
});
