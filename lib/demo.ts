/**
 * The main job, end to end on the bundled model: calibrate on Fashion-MNIST training images, prune at
 * several ratios with VBP and two baselines, and measure accuracy, output fidelity, size and speed.
 */
import os from 'node:os';
import path from 'node:path';
import { VbpError } from './errors';
import { IdxDataset, DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES } from './data/idx';
import { batches } from './data/dataset';
import { evaluate, fidelity, type Evaluation } from './evaluate';
import { measureLatency } from './latency';
import { loadModel, type Model } from './model';
import { readModelCard } from './model-card';
import { packageRoot } from './native';
import { plan, type Criterion } from './plan';
import { prune, type Compensation } from './prune';
import { gatherStats } from './stats';
import { versionInfo, getNumThreads } from './device';
import { quantile } from './latency';

export const BUNDLED_MODEL = path.join(packageRoot, 'models', 'deit_fmnist.pt');

export interface DemoOptions {
  model?: string;
  /** Folder of Fashion-MNIST IDX files (default: Debian's). */
  data?: string;
  device?: string;
  calibrationImages?: number;
  ratios?: number[];
  /** Evaluate on the first N test images only (default: all 10,000). */
  testLimit?: number;
  latencyRuns?: number;
  seed?: number;
  onStage?: (stage: string, done: number, total: number) => void;
}

export type DemoMethod = 'original' | 'vbp' | 'variance-no-shift' | 'magnitude';

export const METHODS: Record<Exclude<DemoMethod, 'original'>, { label: string; criterion: Criterion; compensation: Compensation }> = {
  vbp: { label: 'VBP (variance + mean-shift)', criterion: 'variance', compensation: 'mean' },
  'variance-no-shift': { label: 'variance, no mean-shift', criterion: 'variance', compensation: 'none' },
  magnitude: { label: 'magnitude + mean-shift', criterion: 'magnitude', compensation: 'mean' },
};

export interface DemoRow {
  method: DemoMethod;
  label: string;
  ratio: number;
  top1: number;
  top5: number;
  /** ||y' - y|| / ||y|| over all test logits, and the share of test images with the original's top-1 class. */
  relativeError: number;
  agreement: number;
  parameters: number;
  macs: number;
  keptPerLayer: number[];
  /** Median forward latency, batch 1 and batch 256, and speed-ups against the original (VBP rows and original). */
  latencyMs?: { batch1: number; batch256: number };
  speedup?: { batch1: number; batch256: number };
}

export interface DemoResult {
  createdAt: string;
  machine: { cpu: string; cores: number; threads: number; torch: string; cuda: boolean; device: string; node: string };
  model: { file: string; parameters: number; macs: number; card?: Record<string, unknown> };
  data: { train: string; test: string; calibrationImages: number; testImages: number };
  timings: { calibrationMs: number; totalMs: number };
  layers: Array<{ fc1: string; fc2: string; hidden: number; variance: { min: number; p10: number; p25: number; median: number; p75: number; p90: number; max: number } }>;
  rows: DemoRow[];
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = performance.now();
  const modelFile = options.model ?? BUNDLED_MODEL;
  const card = readModelCard(modelFile);
  if (!card?.mean || !card.std || !card.inputShape) {
    throw new VbpError('DATA', `the demo needs the model card '${modelFile.replace(/\.pt$/, '.json')}' with input shape and normalisation`);
  }
  const dataDir = options.data ?? DEBIAN_FASHION_MNIST;
  const normalise = { mean: card.mean, std: card.std };
  const train = IdxDataset.split(dataDir, 'train', { normalise, classes: FASHION_MNIST_CLASSES });
  const test = IdxDataset.split(dataDir, 'test', { normalise, classes: FASHION_MNIST_CLASSES });
  const ratios = options.ratios ?? [0.2, 0.35, 0.5];
  const calibrationImages = options.calibrationImages ?? 2048;
  const stage = options.onStage ?? (() => undefined);
  const testImages = Math.min(test.size, options.testLimit ?? test.size);

  const model = await loadModel(modelFile, { device: options.device ?? 'cpu' });
  try {
    stage('calibrating', 0, calibrationImages);
    const calibrationStarted = performance.now();
    const stats = await gatherStats(model, batches(train, { batchSize: 128, shuffle: true, seed: options.seed ?? 0, limit: calibrationImages }), {
      onProgress: (p) => stage('calibrating', p.items, calibrationImages),
    });
    const calibrationMs = performance.now() - calibrationStarted;

    const evaluateWithProgress = (m: Model, what: string): Promise<Evaluation> =>
      evaluate(m, test, { limit: testImages, keepLogits: true, onProgress: (p) => stage(what, p.items, p.total) });
    const latency = async (m: Model): Promise<{ batch1: number; batch256: number }> => ({
      batch1: (await measureLatency(m, card.inputShape!, 1, { runs: options.latencyRuns ?? 50 })).medianMs,
      batch256: (await measureLatency(m, card.inputShape!, 256, { runs: Math.max(5, Math.round((options.latencyRuns ?? 50) / 5)) })).medianMs,
    });

    const original = await evaluateWithProgress(model, 'evaluating original');
    stage('timing original', 0, 1);
    const originalLatency = await latency(model);
    const rows: DemoRow[] = [
      {
        method: 'original',
        label: 'original',
        ratio: 0,
        top1: original.top1,
        top5: original.top5,
        relativeError: 0,
        agreement: 1,
        parameters: stats.info.modelParams,
        macs: stats.info.modelMacs,
        keptPerLayer: stats.layers.map((l) => l.hidden),
        latencyMs: originalLatency,
        speedup: { batch1: 1, batch256: 1 },
      },
    ];
    for (const ratio of ratios) {
      for (const [method, spec] of Object.entries(METHODS) as Array<[Exclude<DemoMethod, 'original'>, (typeof METHODS)['vbp']]>) {
        const p = plan(stats, { ratio, criterion: spec.criterion });
        const { model: pruned, report } = await prune(model, p, { compensation: spec.compensation });
        try {
          const result = await evaluateWithProgress(pruned, `${spec.criterion}/${spec.compensation} ${Math.round(ratio * 100)} %`);
          const row: DemoRow = {
            method,
            label: spec.label,
            ratio,
            top1: result.top1,
            top5: result.top5,
            ...fidelity(original, result),
            parameters: report.parameters.after,
            macs: report.macs.after,
            keptPerLayer: p.layers.map((l) => l.keep.length),
          };
          if (method === 'vbp') {
            stage(`timing ${Math.round(ratio * 100)} %`, 0, 1);
            row.latencyMs = await latency(pruned);
            row.speedup = { batch1: originalLatency.batch1 / row.latencyMs.batch1, batch256: originalLatency.batch256 / row.latencyMs.batch256 };
          }
          rows.push(row);
        } finally {
          pruned.dispose();
        }
      }
    }
    const info = versionInfo();
    return {
      createdAt: new Date().toISOString(),
      machine: {
        cpu: os.cpus()[0]?.model ?? 'unknown',
        cores: os.cpus().length,
        threads: getNumThreads(),
        torch: info.torch,
        cuda: info.cuda,
        device: options.device ?? 'cpu',
        node: process.version,
      },
      model: { file: modelFile, parameters: stats.info.modelParams, macs: stats.info.modelMacs, card },
      data: { train: train.description, test: test.description, calibrationImages: stats.info.items, testImages },
      timings: { calibrationMs, totalMs: performance.now() - started },
      layers: stats.layers.map((l, i) => {
        const v = Array.from(stats.variance(i));
        return {
          fc1: l.fc1,
          fc2: l.fc2,
          hidden: l.hidden,
          variance: {
            min: Math.min(...v),
            p10: quantile(v, 0.1),
            p25: quantile(v, 0.25),
            median: quantile(v, 0.5),
            p75: quantile(v, 0.75),
            p90: quantile(v, 0.9),
            max: Math.max(...v),
          },
        };
      }),
      rows,
    };
  } finally {
    model.dispose();
  }
}

/** The paper's DeiT-B numbers (ImageNet-1k, top-1 right after pruning, no fine-tuning), for comparison. */
export const PAPER_DEIT_B = {
  source: 'Variance-Based Pruning for Accelerating and Compressing Trained Networks, arXiv 2507.12988 (ICCV 2025)',
  original: 81.73,
  vbpByRatio: { 0.2: 80.87, 0.3: 78.97, 0.4: 75.78, 0.5: 66.4 } as Record<string, number>,
  at50: { vbp: 66.4, varianceNoShift: 26.04, magnitude: 0.37 },
  speedupAt55: { gpu: 1.44, cpu: 1.5, macsReduction: 0.349 },
};
