/**
 * finetune()'s options: what they are, their defaults (the paper's recipe) and their checks. The checked
 * options that decide a run's result are its settings, which a checkpoint records and a resumed run must
 * repeat.
 */
import { VbpError } from '../errors';
import { checkTrainTransform, type TrainTransform } from '../data/augment';
import type { Batch, Dataset } from '../data/dataset';
import { Model } from '../model/model';
import { checkOptionKeys } from '../util/options';
import type { FinetuneProgress } from './report';
import { SCHEDULES, type Schedule } from './schedule';

/** The paper's recipe (AdamW, lr 1.5e-5, cosine, batch 32, weight decay 0.01). */
export const FINETUNE_DEFAULTS = {
  epochs: 1,
  batchSize: 32,
  lr: 1.5e-5,
  weightDecay: 0.01,
  schedule: 'cosine' as Schedule,
  warmupSteps: 0,
  temperature: 2,
  alpha: 0.5,
  clipNorm: 0,
  seed: 0,
};

export interface FinetuneOptions {
  /** The unpruned model to distil from (eval mode, no gradients). Without one the loss is cross-entropy. */
  teacher?: Model;
  /**
   * A labelled Dataset (batched with batchSize, reshuffled every epoch from seed), or a function giving
   * each epoch's { input, labels } batches.
   */
  data: Dataset | ((epoch: number) => AsyncIterable<Pick<Batch, 'input' | 'labels'>>);
  epochs?: number;
  /** At most this many steps per epoch (a short epoch). Needed for the cosine schedule when data is a function. */
  stepsPerEpoch?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  schedule?: Schedule;
  warmupSteps?: number;
  /** Distillation temperature T (default 2). */
  temperature?: number;
  /** Weight of the distillation term (default 0.5; needs a teacher). */
  alpha?: number;
  /** Clip the gradients' global L2 norm to this (0, the default: no clipping). */
  clipNorm?: number;
  /** What to train: 'all' parameters (default), only the 'mlp' blocks' fc1/fc2, or parameter-name prefixes. */
  trainable?: 'all' | 'mlp' | string[];
  /** Seeds the data order and LibTorch's generator (reseeded from seed and step before every step). */
  seed?: number;
  signal?: AbortSignal;
  onProgress?: (progress: FinetuneProgress) => void;
  /**
   * Write the model and optimizer state to `path` (atomically) every `every` steps and at the end; with
   * `atAbort`, also when `signal` cancels the run (after the last completed step; vbp finetune sets it).
   */
  checkpoint?: { path: string; every: number; atAbort?: boolean };
  /** A checkpoint written by an earlier run with the same settings: continue from it. */
  resume?: string;
  /** Dataset data: skip items the data set cannot read (a damaged image), calling onSkip for each. */
  skipBadItems?: boolean;
  onSkip?: (index: number, error: VbpError) => void;
  /**
   * Data-parallel over the process group (initDistributed()); default: whenever this process has joined one.
   * Each rank trains on its part of every epoch (DistributedSampler's rule; batchSize is per rank, as in DDP),
   * starts from rank 0's weights, and averages gradients across ranks each step; every rank ends with the same
   * weights, and only rank 0 writes checkpoints. With data as a function, each rank trains on what it yields.
   */
  distributed?: boolean;
  /**
   * Mixed precision, as torch.autocast: the student's forward and the loss in 'bf16' (CPU and CUDA) or 'fp16' (CUDA,
   * with a dynamic loss scale as GradScaler's); weights and AdamW's state stay float32; the teacher runs in float32.
   * Default 'fp32'.
   */
  precision?: Precision;
  /**
   * Dataset data: 'crop-flip' trains on torchvision's RandomResizedCrop (scale (0.08, 1), ratio (3/4, 4/3)) and
   * RandomHorizontalFlip of every item, drawn per epoch and item from seed (the same on resume and on any number of
   * ranks); 'none' (default) on the data set's own items, e.g. the evaluation transform of an image folder.
   */
  trainTransform?: TrainTransform;
}

export type Precision = 'fp32' | 'bf16' | 'fp16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16', 'fp16'];

/** The options that decide a run's result (finetune()'s, completed with the defaults). */
export interface CheckpointSettings {
  epochs: number;
  stepsPerEpoch: number | null;
  batchSize: number;
  lr: number;
  weightDecay: number;
  schedule: Schedule;
  warmupSteps: number;
  temperature: number;
  alpha: number;
  clipNorm: number;
  trainable: 'all' | 'mlp' | string[];
  seed: number;
  teacher: boolean;
  /** Ranks of a data-parallel run (absent: one process); a checkpoint resumes on the same number. */
  worldSize?: number;
  /** Mixed precision (absent: fp32). */
  precision?: Precision;
  /** The training augmentation (absent: none). */
  trainTransform?: TrainTransform;
}

const OPTIONS = [
  'teacher',
  'data',
  'epochs',
  'stepsPerEpoch',
  'batchSize',
  'lr',
  'weightDecay',
  'schedule',
  'warmupSteps',
  'temperature',
  'alpha',
  'clipNorm',
  'trainable',
  'seed',
  'signal',
  'onProgress',
  'checkpoint',
  'resume',
  'skipBadItems',
  'onSkip',
  'distributed',
  'precision',
  'trainTransform',
];

export function isDataset(data: unknown): data is Dataset {
  return (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as Dataset).read === 'function' &&
    typeof (data as Dataset).size === 'number'
  );
}

function requireNumber(value: unknown, name: string, check: (n: number) => boolean, expected: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
    throw new VbpError('INVALID_ARGUMENT', `finetune(): ${name} must be ${expected}, got ${String(value)}`);
  }
}

/** Options checked and completed with the defaults; `worldSize` for a data-parallel run. */
export function settingsOf(options: FinetuneOptions, worldSize?: number): CheckpointSettings {
  checkOptionKeys(options, OPTIONS, 'finetune()');
  const d = FINETUNE_DEFAULTS;
  const s: CheckpointSettings = {
    epochs: options.epochs ?? d.epochs,
    stepsPerEpoch: options.stepsPerEpoch ?? null,
    batchSize: options.batchSize ?? d.batchSize,
    lr: options.lr ?? d.lr,
    weightDecay: options.weightDecay ?? d.weightDecay,
    schedule: options.schedule ?? d.schedule,
    warmupSteps: options.warmupSteps ?? d.warmupSteps,
    temperature: options.temperature ?? d.temperature,
    alpha: options.teacher ? (options.alpha ?? d.alpha) : 0,
    clipNorm: options.clipNorm ?? d.clipNorm,
    trainable: options.trainable ?? 'all',
    seed: options.seed ?? d.seed,
    teacher: Boolean(options.teacher),
    ...(worldSize === undefined ? {} : { worldSize }),
    ...(options.precision !== undefined && options.precision !== 'fp32' ? { precision: options.precision } : {}),
    ...(options.trainTransform !== undefined && checkTrainTransform(options.trainTransform, 'finetune()') !== 'none'
      ? { trainTransform: options.trainTransform }
      : {}),
  };
  if (s.trainTransform && !isDataset(options.data))
    throw new VbpError(
      'INVALID_ARGUMENT',
      'finetune(): trainTransform applies to a Dataset; a data function yields its batches as they are (augment them there)',
    );
  if (options.precision !== undefined && !PRECISIONS.includes(options.precision))
    throw new VbpError(
      'INVALID_ARGUMENT',
      `finetune(): precision must be one of ${PRECISIONS.join(', ')}, got '${String(options.precision)}'`,
    );
  const integer = (n: number, min: number) => Number.isInteger(n) && n >= min;
  requireNumber(s.epochs, 'epochs', (n) => integer(n, 1), 'an integer >= 1');
  if (s.stepsPerEpoch !== null)
    requireNumber(s.stepsPerEpoch, 'stepsPerEpoch', (n) => integer(n, 1), 'an integer >= 1');
  requireNumber(s.batchSize, 'batchSize', (n) => integer(n, 1), 'an integer >= 1');
  requireNumber(s.lr, 'lr', (n) => n > 0, 'a number > 0');
  requireNumber(s.weightDecay, 'weightDecay', (n) => n >= 0, 'a number >= 0');
  requireNumber(s.warmupSteps, 'warmupSteps', (n) => integer(n, 0), 'an integer >= 0');
  requireNumber(s.temperature, 'temperature', (n) => n > 0, 'a number > 0');
  requireNumber(s.alpha, 'alpha', (n) => n >= 0 && n <= 1, 'a number in [0, 1]');
  requireNumber(s.clipNorm, 'clipNorm', (n) => n >= 0, 'a number >= 0 (0: no clipping)');
  requireNumber(s.seed, 'seed', (n) => integer(n, 0) && n < 2 ** 32, 'an integer in [0, 2^32)');
  if (!SCHEDULES.includes(s.schedule))
    throw new VbpError(
      'INVALID_ARGUMENT',
      `finetune(): schedule must be one of ${SCHEDULES.join(', ')}, got '${String(s.schedule)}'`,
    );
  if (!(
    s.trainable === 'all' ||
    s.trainable === 'mlp' ||
    (Array.isArray(s.trainable) &&
      s.trainable.length > 0 &&
      s.trainable.every((p) => typeof p === 'string' && p.length > 0))
  )) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      "finetune(): trainable must be 'all', 'mlp' or a non-empty array of parameter-name prefixes",
    );
  }
  if (!options.teacher && options.alpha !== undefined && options.alpha !== 0) {
    throw new VbpError('INVALID_ARGUMENT', 'finetune(): alpha weighs the distillation term, which needs a teacher');
  }
  if (options.teacher !== undefined && !(options.teacher instanceof Model))
    throw new VbpError('INVALID_ARGUMENT', 'finetune(): teacher must be a Model');
  if (!isDataset(options.data) && typeof options.data !== 'function') {
    throw new VbpError(
      'INVALID_ARGUMENT',
      'finetune(): data must be a Dataset or a function (epoch) => AsyncIterable<{ input, labels }>',
    );
  }
  if (isDataset(options.data) && options.data.labelled === false)
    throw new VbpError('DATA', `finetune(): ${options.data.description} has no labels`);
  if (typeof options.data === 'function' && s.schedule === 'cosine' && s.stepsPerEpoch === null) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      'finetune(): with data as a function the number of steps is unknown: give stepsPerEpoch (or schedule: constant)',
    );
  }
  if (options.checkpoint !== undefined) {
    checkOptionKeys(options.checkpoint, ['path', 'every', 'atAbort'], 'finetune() checkpoint');
    if (typeof options.checkpoint.path !== 'string' || options.checkpoint.path.length === 0)
      throw new VbpError('INVALID_ARGUMENT', 'finetune(): checkpoint.path must be a file path');
    requireNumber(options.checkpoint.every, 'checkpoint.every', (n) => integer(n, 1), 'an integer >= 1');
  }
  if (options.resume !== undefined && (typeof options.resume !== 'string' || options.resume.length === 0)) {
    throw new VbpError('INVALID_ARGUMENT', 'finetune(): resume must be the path of a checkpoint');
  }
  return s;
}

export function stepsPerEpochOf(settings: CheckpointSettings, data: FinetuneOptions['data']): number | undefined {
  // A data-parallel rank's part of a Dataset: ceil(size / ranks) items (BatchOptions.shard).
  const items = isDataset(data) ? Math.ceil(data.size / (settings.worldSize ?? 1)) : 0;
  const full = isDataset(data) ? Math.ceil(items / settings.batchSize) : undefined;
  if (settings.stepsPerEpoch === null) return full;
  return full === undefined ? settings.stepsPerEpoch : Math.min(full, settings.stepsPerEpoch);
}
