/**
 * vbp finetune and the paper's recipe: fine-tuning from the command line equals the library's with the same
 * options, writes a model PyTorch loads and reports as JSON; scripts/export_deit.py's timm-style export pruned
 * and fine-tuned. The library's fine-tuning is in test/recovery/finetune.test.ts.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { finetune, gatherStats, loadModel, plan, prune, readNpy, NpyDataset, type Model, type Tensor } from '../../lib';
import { formatNpy } from '../../lib/formats/npy';
import {
  asTensor,
  calibrationBatches,
  fixture,
  maxAbsDiff,
  python,
  readPythonOutput,
  repoRoot,
  tempDir,
  vbp,
} from '../helpers';

const dir = tempDir();
const BATCH = 8;
const ITEM = 3 * 32 * 32;

/** Deterministic batches with a spread of labels (a linear congruential generator, no Math.random). */
function makeBatches(steps: number, seed: number): Array<{ input: Tensor<Float32Array>; labels: Int32Array }> {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: steps }, () => ({
    input: {
      data: Float32Array.from({ length: BATCH * ITEM }, () => next() * 2 - 1),
      shape: [BATCH, 3, 32, 32],
      dtype: 'float32' as const,
    },
    labels: Int32Array.from({ length: BATCH }, () => Math.floor(next() * 10)),
  }));
}

const dataOf = (batches: ReturnType<typeof makeBatches>) =>
  async function* () {
    yield* batches;
  };

async function snapshotParameters(model: Model): Promise<Map<string, Float32Array>> {
  const result = new Map<string, Float32Array>();
  for (const p of model.parameters()) result.set(p.name, (await model.parameter(p.name)).data as Float32Array);
  return result;
}

async function expectSameWeights(a: Model, b: Model): Promise<void> {
  const left = await snapshotParameters(a);
  const right = await snapshotParameters(b);
  expect([...left.keys()]).toEqual([...right.keys()]);
  for (const [name, values] of left)
    expect({ name, diff: maxAbsDiff(values, right.get(name)!) }).toEqual({ name, diff: 0 });
}

describe('vbp finetune and the paper recipe', () => {
  const labels = path.join(dir, 'cli-labels.npy');
  beforeAll(() => {
    const n = readNpy(fixture('calib.npy')).shape[0];
    fs.writeFileSync(
      labels,
      formatNpy({ data: Int32Array.from({ length: n }, (_, i) => (i * 3) % 10), shape: [n], dtype: 'int32' }),
    );
  });

  it('trains from the command line, writes a model PyTorch loads, and reports as JSON; the same as the library with the same options', async () => {
    const out = path.join(dir, 'cli-tuned.pt');
    const args = [
      'finetune',
      fixture('deit_scripted.pt'),
      '--teacher',
      fixture('deit_scripted.pt'),
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--labels',
      labels,
      '--batch-size',
      '16',
      '--lr',
      '1e-3',
      '--epochs',
      '2',
      '--clip-norm',
      '1',
      '--out',
      out,
      '--json',
    ];
    const r = vbp(args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const result = JSON.parse(r.stdout) as {
      out: string;
      report: { steps: number; loss: number[]; epochs: unknown[] };
      recipe: { alpha: number };
    };
    const items = readNpy(fixture('calib.npy')).shape[0];
    expect(result.report.steps).toBe(2 * Math.ceil(items / 16));
    expect(result.recipe.alpha).toBe(0.5);
    const python = readPythonOutput(out, fixture('input_b4.npy'));
    const tuned = await loadModel(out);
    expect(
      maxAbsDiff(asTensor(await tuned.forward(readNpy(fixture('input_b4.npy')))).data as Float32Array, python.output),
    ).toBeLessThanOrEqual(1e-5);
    // The library with the same options (the CLI's data set: the .npy file, shuffled per epoch from seed 0).
    const student = await loadModel(fixture('deit_scripted.pt'));
    const { model, report } = await finetune(student, {
      teacher: student,
      data: new NpyDataset(fixture('calib.npy'), labels),
      batchSize: 16,
      lr: 1e-3,
      epochs: 2,
      clipNorm: 1,
    });
    expect(report.loss).toEqual(result.report.loss);
    await expectSameWeights(model, tuned);
    await Promise.all([model.dispose(), student.dispose(), tuned.dispose()]);
    // Refuses to overwrite without --force.
    expect(vbp(args).status).toBe(2);
  });

  it('scripts/export_deit.py exports a timm-style DeiT (random weights, no downloads) that torch-vbp prunes and fine-tunes in train mode', async () => {
    const out = path.join(dir, 'exported.pt');
    const config = {
      img_size: 32,
      patch_size: 8,
      num_classes: 10,
      embed_dim: 48,
      depth: 2,
      num_heads: 3,
      drop_rate: 0.1,
    };
    const printed = JSON.parse(
      execFileSync(
        python,
        [
          path.join(repoRoot, 'scripts', 'export_deit.py'),
          '--module',
          path.join(repoRoot, 'test', 'python', 'models.py') + ':DeiT',
          '--config',
          JSON.stringify(config),
          '--out',
          out,
        ],
        { encoding: 'utf8' },
      ),
    ) as { maxDiffToEager: number };
    expect(printed.maxDiffToEager).toBe(0);
    const model = await loadModel(out);
    expect(model.card).toMatchObject({
      inputShape: [3, 32, 32],
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      num_classes: 10,
    });
    expect((await model.mlps()).map((b) => b.fc1)).toEqual(['blocks.0.mlp.fc1', 'blocks.1.mlp.fc1']);
    const stats = await gatherStats(model, calibrationBatches());
    const { model: pruned } = await prune(model, plan(stats, { ratio: 0.5 }));
    const { model: tuned, report } = await finetune(pruned, {
      teacher: model,
      data: dataOf(makeBatches(2, 7)),
      stepsPerEpoch: 2,
      batchSize: BATCH,
      lr: 1e-4,
    });
    expect(report.mode).toMatchObject({ kind: 'module', note: expect.stringMatching(/train mode/) });
    await Promise.all([model.dispose(), pruned.dispose(), tuned.dispose()]);
  });
});
