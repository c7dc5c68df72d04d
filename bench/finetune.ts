/**
 * Recovery by fine-tuning on the bundled model (`node dist/bench/finetune.js`, about 6 minutes on 2 cores;
 * writes bench/finetune-results.json): the recipe of the README's Fine-tuning section (AdamW lr 1e-4, batch 128, alpha
 * 0.5, T 2,
 * cosine, one epoch of the 60k training images, 1 LibTorch thread) after pruning 50 % and 90 % of the MLP
 * neurons with VBP and with least squares (compensated selection), and the same recipe in eager PyTorch
 * (bench/python/finetune_fmnist.py) from the same 90 %-pruned VBP model. Top-1 on the 10k test images.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  DEBIAN_FASHION_MNIST,
  IdxDataset,
  batches,
  evaluate,
  finetune,
  gatherStats,
  keepLargeAllocations,
  loadModel,
  prune,
  setNumThreads,
  type Model,
} from '../lib';
import { planPruning } from '../lib/pruning/planning';
import { packageRoot } from '../lib/util/package-root';
import { BUNDLED_MODEL } from '../lib/demo/run';
import { replaceReadmeSection, BUNDLED_CONFIG } from './util';

const RECIPE = {
  lr: 1e-4,
  batchSize: 128,
  alpha: 0.5,
  temperature: 2,
  schedule: 'cosine' as const,
  epochs: 1,
  seed: 0,
};
const python = process.env.VBP_PYTHON ?? '/usr/bin/python3';
const work = path.join(packageRoot, 'bench', 'work');

function log(message: string): void {
  process.stderr.write(`[finetune ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const LABELS = { vbp: 'VBP (variance + mean-shift)', 'compensated-lsq': 'compensated + least squares' } as const;

/**
 * One row of bench/finetune-results.json: a pruned start, tuned for one epoch (and, for VBP 90 %, the same in PyTorch).
 */
interface FinetuneRow {
  method: keyof typeof LABELS;
  ratio: number;
  before: number;
  after: number;
  ofOriginal: number;
  seconds: number;
  steps: number;
  /** bench/python/finetune_fmnist.py's report. */
  pytorch?: { top1After: number; trainSeconds: number };
}

/** The recovery table between the finetune markers of README.md. */
function updateReadme(results: { date: string; original: number; rows: FinetuneRow[] }): void {
  const pct = (x: number) => (100 * x).toFixed(2);
  const lines = [
    `Measured by \`node dist/bench/finetune.js\` (\`bench/finetune-results.json\`, ${results.date}, 2 cores, 1 LibTorch thread): the bundled model ` +
      `(${pct(results.original)} %), pruned with 2,048 calibration images, then one epoch (469 steps) of the recipe AdamW lr 1e-4, batch 128, ` +
      'alpha 0.5, T 2, cosine; top-1 on the 10,000 test images. The PyTorch column runs the same recipe in eager PyTorch ' +
      '(`bench/python/finetune_fmnist.py`) from the same pruned model, in the same run.',
    '',
    '| start | pruned | right after pruning | after 1 epoch | of original | time | PyTorch eager: after / time |',
    '|---|---|---|---|---|---|---|',
    ...results.rows.map(
      (r) =>
        `| ${LABELS[r.method]} | ${Math.round(r.ratio * 100)} % | ${pct(r.before)} | **${pct(r.after)}** | ${pct(r.ofOriginal)} % | ${r.seconds.toFixed(1)} s | ` +
        `${r.pytorch ? `${pct(r.pytorch.top1After)} / ${r.pytorch.trainSeconds.toFixed(1)} s` : ''} |`,
    ),
  ];
  replaceReadmeSection('finetune', lines);
}

async function main(): Promise<void> {
  setNumThreads(1);
  keepLargeAllocations(64 * 2 ** 20);
  fs.mkdirSync(work, { recursive: true });
  const teacher = await loadModel(BUNDLED_MODEL);
  const { mean, std } = teacher.card as { mean: number[]; std: number[] };
  const normalise = { mean, std };
  const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', { normalise });
  const test = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test', { normalise });
  const top1 = async (m: Model) => (await evaluate(m, test, { batchSize: 500 })).top1;
  const original = await top1(teacher);
  const stats = await gatherStats(teacher, batches(train, { batchSize: 128, shuffle: true, seed: 0, limit: 2048 }), {
    covariance: true,
  });
  const rows: FinetuneRow[] = [];
  for (const ratio of [0.9, 0.5]) {
    for (const method of ['vbp', 'compensated-lsq'] as const) {
      const p = await planPruning(teacher, stats, { ratio, criterion: method === 'vbp' ? 'variance' : 'compensated' });
      const { model: pruned } = await prune(teacher, p, method === 'vbp' ? {} : { compensation: 'lsq', stats });
      const before = await top1(pruned);
      const { model: tuned, report } = await finetune(pruned, { ...RECIPE, teacher, data: train });
      const after = await top1(tuned);
      const row: FinetuneRow = {
        method,
        ratio,
        before,
        after,
        ofOriginal: after / original,
        seconds: report.timings.totalMs / 1000,
        steps: report.steps,
      };
      log(
        `${method} ${ratio * 100} %: ${(100 * before).toFixed(2)} -> ${(100 * after).toFixed(2)} % in ${(report.timings.totalMs / 1000).toFixed(1)} s`,
      );
      if (method === 'vbp' && ratio === 0.9) {
        const file = path.join(work, 'finetune-vbp90.pt');
        await pruned.save(file);
        const out = execFileSync(
          python,
          [
            path.join(packageRoot, 'bench', 'python', 'finetune_fmnist.py'),
            file,
            BUNDLED_MODEL,
            JSON.stringify(BUNDLED_CONFIG),
            DEBIAN_FASHION_MNIST,
            String(mean[0]),
            String(std[0]),
          ],
          {
            encoding: 'utf8',
            env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
          },
        );
        row.pytorch = JSON.parse(out) as FinetuneRow['pytorch'];
        log(`  PyTorch eager: ${JSON.stringify(row.pytorch)}`);
      }
      rows.push(row);
      await Promise.all([pruned.dispose(), tuned.dispose()]);
    }
  }
  await teacher.dispose();
  const results = { date: new Date().toISOString().slice(0, 10), recipe: RECIPE, original, rows };
  fs.writeFileSync(path.join(packageRoot, 'bench', 'finetune-results.json'), JSON.stringify(results, null, 2) + '\n');
  updateReadme(results);
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((error) => {
  process.stderr.write(`finetune bench failed: ${error.code ?? ''} ${error.stack ?? error.message}\n`);
  process.exit(1);
});
