/**
 * The bundled model on real data. evaluate() against PyTorch on the full test split; the demo
 * as a user runs it; and the orderings of the pruning methods at 50 % that the measurements support.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  loadModel,
  evaluate,
  fidelity,
  gatherStats,
  plan,
  prune,
  IdxDataset,
  batches,
  readModelCard,
  DEBIAN_FASHION_MNIST,
  type Evaluation,
  type Model,
} from '../lib';
import { BUNDLED_MODEL } from '../lib/demo/run';
import { formatSpeedup } from '../lib/report/demo-report';
import { repoRoot, runPython, tempDir } from './helpers';

const card = readModelCard(BUNDLED_MODEL)!;
const normalise = { mean: card.mean!, std: card.std! };
const test = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test', { normalise });
const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', { normalise });

describe('the bundled model', () => {
  let model: Model;
  let original: Evaluation;
  beforeAll(async () => {
    model = await loadModel(BUNDLED_MODEL);
    original = await evaluate(model, test, { keepLogits: true });
  });
  afterAll(() => model.dispose());

  it('has a model card that says what it is', () => {
    expect(card.inputShape).toEqual([1, 28, 28]);
    expect(JSON.stringify(card)).toMatch(/Fashion-MNIST/);
    expect(JSON.stringify(card)).toMatch(/not an ImageNet/i);
  });

  it('evaluate() counts exactly what PyTorch counts on the 10,000 test images', () => {
    const ref = JSON.parse(
      runPython('fmnist_reference.py', [
        'evaluate',
        BUNDLED_MODEL,
        DEBIAN_FASHION_MNIST,
        String(normalise.mean[0]),
        String(normalise.std[0]),
        '10000',
      ]),
    ) as {
      correct1: number;
      correct5: number;
    };
    expect(original.items).toBe(10000);
    expect(original.correct1).toBe(ref.correct1);
    expect(original.correct5).toBe(ref.correct5);
    expect(original.top1).toBeCloseTo(Number((card as { test_top1?: number }).test_top1 ?? original.top1), 3);
  });

  it('at 50 %: VBP against variance without mean-shift, magnitude pruning and least squares, as measured', async () => {
    const stats = await gatherStats(model, batches(train, { batchSize: 128, shuffle: true, seed: 0, limit: 2048 }), {
      covariance: true,
    });
    const run = async (criterion: 'variance' | 'magnitude', compensation: 'mean' | 'none' | 'lsq') => {
      const { model: pruned } = await prune(
        model,
        plan(stats, { ratio: 0.5, criterion }),
        compensation === 'lsq' ? { compensation, stats } : { compensation },
      );
      const result = await evaluate(pruned, test, { keepLogits: true });
      await pruned.dispose();
      return { top1: result.top1, ...fidelity(original, result) };
    };
    const vbp = await run('variance', 'mean');
    const noShift = await run('variance', 'none');
    const magnitude = await run('magnitude', 'mean');
    // Measured here (LibTorch 1.13, 1 thread, the demo's calibration): top-1 VBP 86.04 %, variance without
    // mean-shift 85.66 %, magnitude + mean-shift 86.54 % (original 88.07 %); relative logit error 0.2310,
    // 0.2334, 0.2443. Four other calibration sets gave the same orderings (models/README.md).
    expect(vbp.top1 - noShift.top1).toBeGreaterThan(0.0015); // the mean-shift keeps accuracy (+0.38 points)
    expect(vbp.relativeError).toBeLessThan(noShift.relativeError); // and brings the outputs closer
    // VBP's outputs stay closest to the original's
    expect(vbp.relativeError).toBeLessThan(magnitude.relativeError - 0.005);
    // Unlike the paper's ImageNet DeiT-B, magnitude + mean-shift keeps more top-1 on this small model (+0.50 points).
    expect(magnitude.top1 - vbp.top1).toBeGreaterThan(0.002);
    expect(original.top1 - vbp.top1).toBeLessThan(0.03);
    // Least squares (the same neurons as VBP) keeps far more: measured 87.48 % and logit error 0.1117.
    const lsq = await run('variance', 'lsq');
    expect(lsq.top1 - Math.max(vbp.top1, magnitude.top1)).toBeGreaterThan(0.005);
    expect(lsq.relativeError).toBeLessThan(0.6 * vbp.relativeError);
  });
});

describe('vbp demo', () => {
  it('runs as the README says, prints the table, writes results.json and report.html', () => {
    const out = tempDir('torch-vbp-demo-');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'vbp.js'), 'demo', '--quick', '--out', out], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    for (const label of [
      'original',
      'VBP (variance + mean-shift)',
      'variance, no mean-shift',
      'magnitude + mean-shift',
      'variance + least squares',
      'compensated + least squares',
      'VBP + fine-tuning (distillation)',
    ]) {
      expect(r.stdout).toContain(label);
    }
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    // Five methods at five ratios, and the VBP models of the two highest ratios fine-tuned.
    expect(results.rows).toHaveLength(1 + 5 * 5 + 2);
    const tuned = results.rows.filter((row: { method: string }) => row.method === 'vbp-finetuned');
    expect(tuned.map((row: { ratio: number }) => row.ratio)).toEqual([0.7, 0.9]);
    // Measured (1,000 test images, 20 steps): 74.4 -> 83.9 % at 90 %; asserted with a wide margin.
    const tuned90 = tuned[1] as { top1: number; finetune: { top1Before: number; steps: number } };
    expect(tuned90.finetune.steps).toBe(20);
    expect(tuned90.top1 - tuned90.finetune.top1Before).toBeGreaterThan(0.04);
    expect([...new Set(results.rows.map((row: { ratio: number }) => row.ratio))]).toEqual([
      0, 0.2, 0.35, 0.5, 0.7, 0.9,
    ]);
    expect(results.data.calibrationImages).toBe(2048);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html).toContain('Recovery by fine-tuning (VBP)');
    expect(html).toContain('Kept neurons per MLP block');
    const vbp50 = results.rows.find(
      (row: { method: string; ratio: number }) => row.method === 'vbp' && row.ratio === 0.5,
    );
    expect(vbp50.macs).toBeLessThan(results.rows[0].macs);
    expect(vbp50.speedup.batch1.speedup).toBeGreaterThan(0);
    expect(vbp50.speedup.batch256.low).toBeLessThanOrEqual(vbp50.speedup.batch256.high);
    // Every chart legend fits its picture whole (11 px text, at most 0.62 em per glyph).
    for (const svg of html.match(/<svg [^]*?<\/svg>/g)!) {
      const width = Number(/viewBox="0 0 (\d+)/.exec(svg)![1]);
      for (const [, x, label] of svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" font-size="11">([^<]+)<\/text>/g)) {
        expect(Number(x) + label.length * 11 * 0.62).toBeLessThanOrEqual(width);
      }
    }
    expect(html).toContain('VBP (variance + mean-shift)</text>');
    // Run again into the same folder: refused without --force, before any work.
    const again = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'vbp.js'), 'demo', '--quick', '--out', out], {
      encoding: 'utf8',
    });
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/\[OUTPUT_EXISTS\]: --out: .*results\.json' already exists \(pass --force/);
  });

  it('refuses a file as --out and bad --ratios before making anything', () => {
    const base = tempDir('torch-vbp-demo-bad-');
    const file = path.join(base, 'a-file');
    fs.writeFileSync(file, 'x');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'vbp.js'), 'demo', ...args], { encoding: 'utf8' });
    const asFile = run('--out', file);
    expect(asFile.status).toBe(2);
    expect(asFile.stderr).toMatch(/\[IO\]: --out: '.*a-file' is a file/);
    const badRatios = run('--out', path.join(base, 'new-folder'), '--ratios', '0.2,1.5');
    expect(badRatios.status).toBe(2);
    expect(badRatios.stderr).toContain('--ratios');
    expect(fs.existsSync(path.join(base, 'new-folder'))).toBe(false);
  });
});

describe('demo report formatting', () => {
  it('marks speed-ups whose paired ratios straddle 1.00x as noise', () => {
    const base = { batchSize: 1, runs: 10, baselineMs: 1, candidateMs: 1 };
    expect(formatSpeedup({ ...base, speedup: 1.13, low: 1.08, high: 1.2, significant: true })).toBe('1.13x');
    expect(formatSpeedup({ ...base, speedup: 1.02, low: 0.97, high: 1.06, significant: false })).toBe('1.02x (noise)');
  });
});
