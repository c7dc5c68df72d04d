/**
 * The main job, end to end on the bundled model: calibrate on Fashion-MNIST training images, prune at
 * several ratios with VBP, two baselines and least-squares compensation, fine-tune the VBP models of the
 * highest ratios for a short epoch, and measure accuracy, output fidelity, size and speed.
 */
import os from 'node:os';
import path from 'node:path';
import { VbpError } from '../errors';
import { batches } from '../data/dataset';
import { IdxDataset, DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES } from '../data/idx-dataset';
import type { ModelCard } from '../formats/model-card';
import { evaluate, fidelity, type Evaluation } from '../measure/evaluate';
import { compareLatency, type SpeedUp } from '../measure/latency';
import { packageRoot } from '../util/package-root';
import { getNumThreads, versionInfo } from '../native/runtime';
import type { Criterion } from '../pruning/criteria';
import { loadModel, type Model } from '../model/model';
import { planPruning } from '../pruning/planning';
import { prune, type Compensation } from '../pruning/prune';
import { finetune } from '../recovery/finetune';
import { gatherStats } from '../statistics/gather';
import type { Stats } from '../statistics/stats';
import { quantile } from '../util/quantiles';

export const BUNDLED_MODEL = path.join(packageRoot, 'models', 'deit_fmnist.pt');

interface DemoOptions {
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
  /**
   * Fine-tune the VBP models of these ratios (default: the two highest) with distillation from the original,
   * for one short epoch of `items` training images (default 12,800); `false`: no fine-tuning.
   */
  finetune?: { ratios?: number[]; items?: number } | false;
  onStage?: (stage: string, done: number, total: number) => void;
}

type DemoMethod = 'original' | 'vbp' | 'variance-no-shift' | 'magnitude' | 'lsq' | 'compensated' | 'vbp-finetuned';

type PruningMethod = Exclude<DemoMethod, 'original' | 'vbp-finetuned'>;

const METHODS: Record<
  PruningMethod,
  { label: string; criterion: Criterion | 'compensated'; compensation: Compensation }
> = {
  vbp: { label: 'VBP (variance + mean-shift)', criterion: 'variance', compensation: 'mean' },
  'variance-no-shift': { label: 'variance, no mean-shift', criterion: 'variance', compensation: 'none' },
  magnitude: { label: 'magnitude + mean-shift', criterion: 'magnitude', compensation: 'mean' },
  lsq: { label: 'variance + least squares', criterion: 'variance', compensation: 'lsq' },
  compensated: { label: 'compensated + least squares', criterion: 'compensated', compensation: 'lsq' },
};

export const DEMO_RATIOS = [0.2, 0.35, 0.5, 0.7, 0.9];

const FINETUNED_LABEL = 'VBP + fine-tuning (distillation)';

/** The demo's recovery step: the recipe measured on this model (the README's Fine-tuning section), on a short epoch. */
export const DEMO_FINETUNE = {
  items: 12800,
  batchSize: 128,
  lr: 1e-4,
  alpha: 0.5,
  temperature: 2,
  schedule: 'cosine' as const,
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
  /** VBP rows: speed-up over the original, timed in alternating pairs at batch 1 and 256. */
  speedup?: { batch1: SpeedUp; batch256: SpeedUp };
  /** Fine-tuned rows: the top-1 right after pruning, and the run. */
  finetune?: { top1Before: number; steps: number; items: number; ms: number };
}

interface VarianceSummary {
  min: number;
  p10: number;
  p25: number;
  median: number;
  p75: number;
  p90: number;
  max: number;
}

export interface DemoResult {
  createdAt: string;
  machine: { cpu: string; cores: number; threads: number; torch: string; cuda: boolean; device: string; node: string };
  model: { file: string; parameters: number; macs: number; card?: Record<string, unknown> };
  data: { train: string; test: string; calibrationImages: number; testImages: number };
  timings: { calibrationMs: number; totalMs: number };
  layers: Array<{ fc1: string; fc2: string; hidden: number; variance: VarianceSummary }>;
  rows: DemoRow[];
}

interface DemoContext {
  model: Model;
  card: ModelCard & { inputShape: number[] };
  test: IdxDataset;
  train: IdxDataset;
  testImages: number;
  original: Evaluation;
  stats: Stats;
  options: DemoOptions;
  stage: NonNullable<DemoOptions['onStage']>;
}

function demoCard(model: Model, file: string): ModelCard & { inputShape: number[]; mean: number[]; std: number[] } {
  const card = model.card;
  if (!card?.mean || !card.std || !card.inputShape) {
    throw new VbpError(
      'DATA',
      `the demo needs a model card for '${file}' (inside the model or beside it) with input shape and normalisation`,
    );
  }
  return card as ModelCard & { inputShape: number[]; mean: number[]; std: number[] };
}

async function calibrate(
  model: Model,
  train: IdxDataset,
  options: DemoOptions,
  stage: DemoContext['stage'],
): Promise<{ stats: Stats; ms: number }> {
  const images = options.calibrationImages ?? 2048;
  stage('calibrating', 0, images);
  const started = performance.now();
  const stats = await gatherStats(
    model,
    batches(train, { batchSize: 128, shuffle: true, seed: options.seed ?? 0, limit: images }),
    {
      covariance: true,
      onProgress: (p) => stage('calibrating', p.items, images),
    },
  );
  return { stats, ms: performance.now() - started };
}

function evaluateTest(
  context: Pick<DemoContext, 'test' | 'testImages' | 'stage'>,
  model: Model,
  what: string,
): Promise<Evaluation> {
  return evaluate(model, context.test, {
    limit: context.testImages,
    keepLogits: true,
    onProgress: (p) => context.stage(what, p.items, p.total),
  });
}

async function speedupOf(
  context: DemoContext,
  pruned: Model,
  ratio: number,
): Promise<{ batch1: SpeedUp; batch256: SpeedUp }> {
  const runs = context.options.latencyRuns ?? 50;
  context.stage(`timing ${Math.round(ratio * 100)} %`, 0, 1);
  return {
    batch1: await compareLatency(context.model, pruned, context.card.inputShape, 1, { runs }),
    batch256: await compareLatency(context.model, pruned, context.card.inputShape, 256, {
      runs: Math.max(6, Math.round(runs / 5)),
    }),
  };
}

/** The rows of one method at one ratio: the pruned model's, and for VBP at the fine-tuned ratios, the tuned model's. */
async function methodRows(context: DemoContext, ratio: number, method: PruningMethod): Promise<DemoRow[]> {
  const spec = METHODS[method];
  const { stats } = context;
  const p = await planPruning(context.model, stats, { ratio, criterion: spec.criterion });
  const { model: pruned, report } = await prune(
    context.model,
    p,
    spec.compensation === 'lsq' ? { compensation: 'lsq', stats } : { compensation: spec.compensation },
  );
  try {
    const result = await evaluateTest(context, pruned, `${method} ${Math.round(ratio * 100)} %`);
    const row: DemoRow = {
      method,
      label: spec.label,
      ratio,
      top1: result.top1,
      top5: result.top5,
      ...fidelity(context.original, result),
      parameters: report.parameters.after,
      macs: report.macs.after,
      keptPerLayer: p.layers.map((l) => l.keep.length),
      ...(method === 'vbp' ? { speedup: await speedupOf(context, pruned, ratio) } : {}),
    };
    return method === 'vbp' && finetuneRatios(context).includes(ratio)
      ? [row, await finetunedRow(context, pruned, row)]
      : [row];
  } finally {
    await pruned.dispose();
  }
}

function finetuneRatios(context: DemoContext): number[] {
  const setting = context.options.finetune;
  if (setting === false) return [];
  const ratios = context.options.ratios ?? DEMO_RATIOS;
  return setting?.ratios ?? [...ratios].sort((a, b) => b - a).slice(0, 2);
}

/** One short epoch of distillation from the original into the pruned model, then the same evaluation. */
async function finetunedRow(context: DemoContext, pruned: Model, before: DemoRow): Promise<DemoRow> {
  const settings = context.options.finetune || {};
  const items = Math.min(settings.items ?? DEMO_FINETUNE.items, context.train.size);
  const what = `fine-tuning ${Math.round(before.ratio * 100)} %`;
  const { items: _items, ...recipe } = DEMO_FINETUNE;
  const steps = Math.ceil(items / recipe.batchSize);
  context.stage(what, 0, steps);
  const { model: tuned, report } = await finetune(pruned, {
    ...recipe,
    teacher: context.model,
    data: context.train,
    stepsPerEpoch: steps,
    seed: context.options.seed ?? 0,
    onProgress: (p) => context.stage(what, p.step, steps),
  });
  try {
    const result = await evaluateTest(context, tuned, `${FINETUNED_LABEL} ${Math.round(before.ratio * 100)} %`);
    return {
      ...before,
      method: 'vbp-finetuned',
      label: FINETUNED_LABEL,
      top1: result.top1,
      top5: result.top5,
      ...fidelity(context.original, result),
      speedup: undefined,
      finetune: { top1Before: before.top1, steps: report.steps, items: report.items, ms: report.timings.totalMs },
    };
  } finally {
    await tuned.dispose();
  }
}

function originalRow(context: DemoContext): DemoRow {
  return {
    method: 'original',
    label: 'original',
    ratio: 0,
    top1: context.original.top1,
    top5: context.original.top5,
    relativeError: 0,
    agreement: 1,
    parameters: context.stats.info.modelParams,
    macs: context.stats.info.modelMacs,
    keptPerLayer: context.stats.layers.map((l) => l.hidden),
  };
}

function varianceSummaries(stats: Stats): DemoResult['layers'] {
  return stats.layers.map((l, i) => {
    const v = stats.variance(i);
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
  });
}

function machine(device: string): DemoResult['machine'] {
  const info = versionInfo();
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    threads: getNumThreads(),
    torch: info.torch,
    cuda: info.cuda,
    device,
    node: process.version,
  };
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = performance.now();
  const modelFile = options.model ?? BUNDLED_MODEL;
  const stage = options.onStage ?? (() => undefined);
  const model = await loadModel(modelFile, { device: options.device ?? 'cpu' });
  try {
    const card = demoCard(model, modelFile);
    const dataDir = options.data ?? DEBIAN_FASHION_MNIST;
    const normalise = { mean: card.mean, std: card.std };
    const train = IdxDataset.split(dataDir, 'train', { normalise, classes: FASHION_MNIST_CLASSES });
    const test = IdxDataset.split(dataDir, 'test', { normalise, classes: FASHION_MNIST_CLASSES });
    const testImages = Math.min(test.size, options.testLimit ?? test.size);
    const { stats, ms: calibrationMs } = await calibrate(model, train, options, stage);
    const original = await evaluateTest({ test, testImages, stage }, model, 'evaluating original');
    const context: DemoContext = { model, card, test, train, testImages, original, stats, options, stage };
    const rows = [originalRow(context)];
    for (const ratio of options.ratios ?? DEMO_RATIOS) {
      for (const method of Object.keys(METHODS) as Array<keyof typeof METHODS>)
        rows.push(...(await methodRows(context, ratio, method)));
    }
    return {
      createdAt: new Date().toISOString(),
      machine: machine(options.device ?? 'cpu'),
      model: { file: modelFile, parameters: stats.info.modelParams, macs: stats.info.modelMacs, card },
      data: { train: train.description, test: test.description, calibrationImages: stats.info.items, testImages },
      timings: { calibrationMs, totalMs: performance.now() - started },
      layers: varianceSummaries(stats),
      rows,
    };
  } finally {
    await model.dispose();
  }
}
