/**
 * Fine-tuning with knowledge distillation, the paper's recovery step after pruning, trained by LibTorch's
 * autograd in the native core on the TorchScript model itself:
 *   loss = (1 - alpha) * CE(student, y) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
 * (plain cross-entropy without a teacher), AdamW, a cosine or constant schedule stepped per batch,
 * optional gradient clipping and a frozen subset. The inputs stay untouched; the result is a new model.
 */
import { VbpError, callNative, callNativeSync } from '../errors';
import type { ModelCard } from '../formats/model-card';
import type { NativeTrainer, NativeTrainerOptions } from '../native/addon';
import { isTensor, type Tensor } from '../tensor';
import { batches, type Batch, type Dataset } from '../data/dataset';
import { checkOptionKeys } from '../util/options';
import { median } from '../util/quantiles';
import { writeAtomically } from '../util/files';
import { checkpointState, readCheckpointState, type CheckpointSettings, type CheckpointState, type PartialEpoch } from './checkpoint';
import { loadModel, Model } from '../model/model';
import { learningRate, SCHEDULES, type Schedule } from './schedule';

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
}

export interface FinetuneProgress {
  epoch: number;
  step: number;
  totalSteps: number | undefined;
  loss: number;
  lr: number;
  imagesPerSecond: number;
  elapsedMs: number;
  /** Estimated time left, when the number of steps is known. */
  etaMs: number | undefined;
}

export interface EpochReport {
  epoch: number;
  steps: number;
  items: number;
  meanLoss: number;
  /** Top-1 on the training batches, in train mode, before each step's update. */
  trainAccuracy: number;
  ms: number;
}

export interface FinetuneReport {
  steps: number;
  items: number;
  /** Per step: the loss, its two terms and the learning rate used. */
  loss: number[];
  crossEntropy: number[];
  distillation: number[];
  lr: number[];
  gradNorm: number[];
  epochs: EpochReport[];
  timings: { totalMs: number; medianStepMs: number; imagesPerSecond: number };
  parameters: { total: number; trainable: number };
  /**
   * How the graph takes train mode: 'module' (scripted code reads `training`: dropout and drop-path run as
   * in PyTorch's train()), or 'traced-eval' (traced in eval mode: the listed ops stay in eval behaviour).
   */
  mode: { kind: 'module' | 'traced-eval'; frozenOff: string[]; note: string };
  resumedAt?: number;
}

export interface FinetuneResult {
  model: Model;
  report: FinetuneReport;
}

/**
 * A failed or cancelled finetune(): `model` holds the weights of the last completed step (dispose it). A run
 * cancelled by its signal with `checkpoint.atAbort` writes a checkpoint at the interruption (after the last
 * completed step) and names it in `checkpoint`; `resume` continues from it.
 */
export class FinetuneError extends VbpError {
  readonly model?: Model;
  readonly report?: FinetuneReport;
  readonly checkpoint?: { path: string; step: number };

  constructor(error: VbpError, model: Model | undefined, report: FinetuneReport | undefined, checkpoint?: { path: string; step: number }) {
    super(error.code, error.message, { cause: error.cause ?? error, detail: error.detail });
    this.name = 'FinetuneError';
    this.model = model;
    this.report = report;
    if (checkpoint) this.checkpoint = checkpoint;
  }
}

const OPTIONS = [
  'teacher', 'data', 'epochs', 'stepsPerEpoch', 'batchSize', 'lr', 'weightDecay', 'schedule', 'warmupSteps', 'temperature',
  'alpha', 'clipNorm', 'trainable', 'seed', 'signal', 'onProgress', 'checkpoint', 'resume', 'skipBadItems', 'onSkip',
];

function isDataset(data: unknown): data is Dataset {
  return typeof data === 'object' && data !== null && typeof (data as Dataset).read === 'function' && typeof (data as Dataset).size === 'number';
}

function requireNumber(value: unknown, name: string, check: (n: number) => boolean, expected: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
    throw new VbpError('INVALID_ARGUMENT', `finetune(): ${name} must be ${expected}, got ${String(value)}`);
  }
}

/** Options checked and completed with the defaults. */
function settingsOf(options: FinetuneOptions): CheckpointSettings {
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
  };
  const integer = (n: number, min: number) => Number.isInteger(n) && n >= min;
  requireNumber(s.epochs, 'epochs', (n) => integer(n, 1), 'an integer >= 1');
  if (s.stepsPerEpoch !== null) requireNumber(s.stepsPerEpoch, 'stepsPerEpoch', (n) => integer(n, 1), 'an integer >= 1');
  requireNumber(s.batchSize, 'batchSize', (n) => integer(n, 1), 'an integer >= 1');
  requireNumber(s.lr, 'lr', (n) => n > 0, 'a number > 0');
  requireNumber(s.weightDecay, 'weightDecay', (n) => n >= 0, 'a number >= 0');
  requireNumber(s.warmupSteps, 'warmupSteps', (n) => integer(n, 0), 'an integer >= 0');
  requireNumber(s.temperature, 'temperature', (n) => n > 0, 'a number > 0');
  requireNumber(s.alpha, 'alpha', (n) => n >= 0 && n <= 1, 'a number in [0, 1]');
  requireNumber(s.clipNorm, 'clipNorm', (n) => n >= 0, 'a number >= 0 (0: no clipping)');
  requireNumber(s.seed, 'seed', (n) => integer(n, 0) && n < 2 ** 32, 'an integer in [0, 2^32)');
  if (!SCHEDULES.includes(s.schedule)) throw new VbpError('INVALID_ARGUMENT', `finetune(): schedule must be one of ${SCHEDULES.join(', ')}, got '${String(s.schedule)}'`);
  if (!(s.trainable === 'all' || s.trainable === 'mlp' || (Array.isArray(s.trainable) && s.trainable.length > 0 && s.trainable.every((p) => typeof p === 'string' && p.length > 0)))) {
    throw new VbpError('INVALID_ARGUMENT', "finetune(): trainable must be 'all', 'mlp' or a non-empty array of parameter-name prefixes");
  }
  if (!options.teacher && options.alpha !== undefined && options.alpha !== 0) {
    throw new VbpError('INVALID_ARGUMENT', 'finetune(): alpha weighs the distillation term, which needs a teacher');
  }
  if (options.teacher !== undefined && !(options.teacher instanceof Model)) throw new VbpError('INVALID_ARGUMENT', 'finetune(): teacher must be a Model');
  if (!isDataset(options.data) && typeof options.data !== 'function') {
    throw new VbpError('INVALID_ARGUMENT', 'finetune(): data must be a Dataset or a function (epoch) => AsyncIterable<{ input, labels }>');
  }
  if (isDataset(options.data) && options.data.labelled === false) throw new VbpError('DATA', `finetune(): ${options.data.description} has no labels`);
  if (typeof options.data === 'function' && s.schedule === 'cosine' && s.stepsPerEpoch === null) {
    throw new VbpError('INVALID_ARGUMENT', 'finetune(): with data as a function the number of steps is unknown: give stepsPerEpoch (or schedule: constant)');
  }
  if (options.checkpoint !== undefined) {
    checkOptionKeys(options.checkpoint, ['path', 'every', 'atAbort'], 'finetune() checkpoint');
    if (typeof options.checkpoint.path !== 'string' || options.checkpoint.path.length === 0) throw new VbpError('INVALID_ARGUMENT', 'finetune(): checkpoint.path must be a file path');
    requireNumber(options.checkpoint.every, 'checkpoint.every', (n) => integer(n, 1), 'an integer >= 1');
  }
  if (options.resume !== undefined && (typeof options.resume !== 'string' || options.resume.length === 0)) {
    throw new VbpError('INVALID_ARGUMENT', 'finetune(): resume must be the path of a checkpoint');
  }
  return s;
}

function stepsPerEpochOf(settings: CheckpointSettings, data: FinetuneOptions['data']): number | undefined {
  const full = isDataset(data) ? Math.ceil(data.size / settings.batchSize) : undefined;
  if (settings.stepsPerEpoch === null) return full;
  return full === undefined ? settings.stepsPerEpoch : Math.min(full, settings.stepsPerEpoch);
}

/** The order of epoch `epoch`'s items: a different shuffle every epoch, the same for the same seed. */
export function epochSeed(seed: number, epoch: number): number {
  return (seed * 1000003 + epoch) >>> 0;
}

/** The batches of one epoch, after the first `skip`. */
function epochBatches(options: FinetuneOptions, settings: CheckpointSettings, epoch: number, skip: number): AsyncIterable<Pick<Batch, 'input' | 'labels'>> {
  const data = options.data;
  if (isDataset(data)) {
    const { skipBadItems, onSkip } = options;
    return batches(data, { batchSize: settings.batchSize, shuffle: true, seed: epochSeed(settings.seed, epoch), skipBadItems, onSkip }).skipBatches(skip);
  }
  return (async function* () {
    let seen = 0;
    for await (const batch of data(epoch)) if (seen++ >= skip) yield batch;
  })();
}

async function trainablePrefixes(student: Model, trainable: CheckpointSettings['trainable']): Promise<string[] | undefined> {
  if (trainable === 'all') return undefined;
  if (trainable === 'mlp') return (await student.mlps()).flatMap((b) => [b.fc1, b.fc2]);
  return trainable;
}

function checkBatch(batch: Pick<Batch, 'input' | 'labels'>): void {
  if (!batch || !isTensor(batch.input) || !(batch.labels instanceof Int32Array)) {
    throw new VbpError('DATA', 'finetune(): each batch must be { input: Tensor, labels: Int32Array }');
  }
  if (batch.labels.length !== batch.input.shape[0]) {
    throw new VbpError('DATA', `finetune(): a batch has ${batch.input.shape[0]} items but ${batch.labels.length} labels`);
  }
  if (batch.labels.some((l) => l < 0)) throw new VbpError('DATA', 'finetune(): a batch has items without a label (-1)');
}

function emptyReport(): FinetuneReport {
  return {
    steps: 0,
    items: 0,
    loss: [],
    crossEntropy: [],
    distillation: [],
    lr: [],
    gradNorm: [],
    epochs: [],
    timings: { totalMs: 0, medianStepMs: 0, imagesPerSecond: 0 },
    parameters: { total: 0, trainable: 0 },
    mode: { kind: 'module', frozenOff: [], note: '' },
  };
}

function modeOf(info: ReturnType<NativeTrainer['info']>): FinetuneReport['mode'] {
  if (info.frozenOff.length > 0) {
    return {
      kind: 'traced-eval',
      frozenOff: info.frozenOff,
      note: `the model was traced in eval mode: ${info.frozenOff.length} dropout/normalisation op(s) keep their eval behaviour while training (export it with torch.jit.script to train them in train mode)`,
    };
  }
  return {
    kind: 'module',
    frozenOff: [],
    note: info.honoursTrainMode ? 'trained in train mode (the scripted code reads `training`)' : 'no op of this graph depends on train/eval mode',
  };
}

/** The student's card with a note of the fine-tuning. */
function tunedCard(card: ModelCard | undefined, settings: CheckpointSettings, report: FinetuneReport, teacher: Model | undefined): ModelCard | undefined {
  if (!card) return undefined;
  const history = Array.isArray(card.finetuning) ? card.finetuning : card.finetuning ? [card.finetuning] : [];
  const { stepsPerEpoch, ...recipe } = settings;
  return {
    ...card,
    finetuning: [
      ...history,
      { tool: 'torch-vbp', ...recipe, ...(stepsPerEpoch === null ? {} : { stepsPerEpoch }), steps: report.steps, items: report.items, ...(teacher?.source ? { teacherFile: teacher.source } : {}) },
    ],
  };
}

/**
 * Fine-tunes `student` (typically a pruned model) and returns a new model with the report. Rejects with a
 * FinetuneError (NON_FINITE for a NaN/Inf loss, ABORTED for the signal) holding the last good weights.
 */
export async function finetune(student: Model, options: FinetuneOptions): Promise<FinetuneResult> {
  if (!(student instanceof Model)) throw new VbpError('INVALID_ARGUMENT', 'finetune(student, options): student must be a Model');
  if (typeof options !== 'object' || options === null) throw new VbpError('INVALID_ARGUMENT', 'finetune(student, options): options must be an object with data');
  const settings = settingsOf(options);
  const perEpoch = stepsPerEpochOf(settings, options.data);
  const totalSteps = perEpoch === undefined ? undefined : perEpoch * settings.epochs;

  const prefixes = await trainablePrefixes(student, settings.trainable);
  let state: CheckpointState | undefined;
  let source: Model = student;
  if (options.resume) {
    source = await loadModel(options.resume, { device: student.device });
    try {
      state = readCheckpointState(source, options.resume, settings, student);
    } catch (error) {
      await source.dispose();
      throw error;
    }
  }
  const { weightDecay, temperature, alpha, clipNorm, seed } = settings;
  const nativeOptions: NativeTrainerOptions = { weightDecay, temperature, alpha, clipNorm, seed, ...(prefixes ? { trainable: prefixes } : {}) };
  let trainer: NativeTrainer;
  try {
    trainer = await source.enqueue((h) => h.createTrainer(nativeOptions, state !== undefined));
  } finally {
    if (source !== student) await source.dispose();
  }
  try {
    return await trainWith(trainer, student, options, settings, perEpoch, totalSteps, state);
  } finally {
    trainer.dispose();
  }
}

async function trainWith(
  trainer: NativeTrainer,
  student: Model,
  options: FinetuneOptions,
  settings: CheckpointSettings,
  perEpoch: number | undefined,
  totalSteps: number | undefined,
  state: CheckpointState | undefined,
): Promise<FinetuneResult> {
  const report = state ? structuredClone(state.report) : emptyReport();
  const info = callNativeSync(() => trainer.info());
  report.mode = modeOf(info);
  report.parameters = { total: info.parameters, trainable: info.trainableParameters };
  if (state) report.resumedAt = state.step;
  const started = Date.now() - report.timings.totalMs;
  const runStarted = Date.now();
  const firstStep = report.steps;
  const stepTimes: number[] = [];
  const teacher = options.teacher;
  const checkpoint = options.checkpoint;

  const writeCheckpoint = async (epoch: number, partialEpoch: PartialEpoch | undefined): Promise<void> => {
    if (!checkpoint) return;
    report.timings.totalMs = Date.now() - started;
    const stateJson = JSON.stringify(checkpointState(settings, report, epoch, partialEpoch));
    const card = student.card ? JSON.stringify(student.card) : '';
    await writeAtomically(checkpoint.path, (temporary) => callNative(() => trainer.checkpoint(temporary, card, stateJson)), { overwrite: true });
  };
  const finish = async (): Promise<Model> => {
    const handle = await callNative(() => trainer.snapshot());
    return new Model(handle, student.source, tunedCard(student.card, settings, report, teacher));
  };
  const fail = async (error: unknown, written?: { path: string; step: number }): Promise<never> => {
    const coded = error instanceof VbpError ? error : new VbpError('INTERNAL', String(error), { cause: error });
    throw new FinetuneError(coded, report.steps > 0 ? await finish() : undefined, report, written);
  };

  let step = state?.step ?? 0;
  for (let epoch = state?.epoch ?? 0; epoch < settings.epochs; epoch++) {
    const resumed = state && epoch === state.epoch ? state.partialEpoch : undefined;
    const epochStarted = Date.now() - (resumed?.ms ?? 0);
    const epochReport: EpochReport = { epoch, steps: resumed?.steps ?? 0, items: resumed?.items ?? 0, meanLoss: 0, trainAccuracy: 0, ms: 0 };
    let correct = resumed?.correct ?? 0;
    let lossSum = resumed?.lossSum ?? 0;
    let fetched = epochReport.steps;
    const iterator = epochBatches(options, settings, epoch, epochReport.steps)[Symbol.asyncIterator]();
    // Reading the next batch, and the teacher's logits for it, overlaps the current step.
    const prefetch = async (): Promise<{ batch: Pick<Batch, 'input' | 'labels'>; logits: Tensor | null } | undefined> => {
      if (perEpoch !== undefined && fetched >= perEpoch) return undefined;
      const next = await iterator.next();
      if (next.done) return undefined;
      fetched++;
      checkBatch(next.value);
      const logits = teacher ? await teacher.forward(next.value.input) : null;
      if (logits !== null && !isTensor(logits)) throw new VbpError('DATA', "finetune(): the teacher's forward must return one tensor of logits");
      return { batch: next.value, logits: logits as Tensor | null };
    };
    const partial = (): PartialEpoch => ({ steps: epochReport.steps, items: epochReport.items, correct, lossSum, ms: Date.now() - epochStarted });
    try {
      let pending = prefetch();
      for (;;) {
        const current = await pending;
        if (!current) break;
        if (options.signal?.aborted) throw new VbpError('ABORTED', `fine-tuning was cancelled after ${step} steps`);
        const lr = learningRate(settings.schedule, settings.lr, step, totalSteps ?? step + 1, settings.warmupSteps);
        const stepStarted = performance.now();
        pending = prefetch();
        pending.catch(() => undefined);
        const result = await callNative(() => trainer.step(current.batch.input, current.batch.labels, current.logits, lr, step));
        stepTimes.push(performance.now() - stepStarted);
        step++;
        report.steps = step;
        report.items += result.count;
        report.loss.push(result.loss);
        report.crossEntropy.push(result.crossEntropy);
        report.distillation.push(result.distillation);
        report.lr.push(lr);
        report.gradNorm.push(result.gradNorm);
        epochReport.steps++;
        epochReport.items += result.count;
        correct += result.correct;
        lossSum += result.loss;
        const elapsedMs = Date.now() - started;
        options.onProgress?.({
          epoch,
          step,
          totalSteps,
          loss: result.loss,
          lr,
          imagesPerSecond: report.items / Math.max(elapsedMs / 1000, 1e-9),
          elapsedMs,
          etaMs: totalSteps === undefined ? undefined : ((Date.now() - runStarted) / (step - firstStep)) * (totalSteps - step),
        });
        if (checkpoint && step % checkpoint.every === 0) await writeCheckpoint(epoch, partial());
      }
    } catch (error) {
      await iterator.return?.(undefined);
      // Cancelled between steps: the state is that of the last completed step, so it can be kept exactly.
      if (checkpoint?.atAbort && error instanceof VbpError && error.code === 'ABORTED' && report.steps > 0) {
        try {
          await writeCheckpoint(epoch, partial());
        } catch (writeError) {
          const why = writeError instanceof Error ? writeError.message : String(writeError);
          return fail(new VbpError('ABORTED', `${error.message}; writing the checkpoint '${checkpoint.path}' at the interruption failed: ${why}`, { cause: writeError }));
        }
        return fail(error, { path: checkpoint.path, step: report.steps });
      }
      return fail(error);
    }
    await iterator.return?.(undefined);
    epochReport.meanLoss = epochReport.steps > 0 ? lossSum / epochReport.steps : 0;
    epochReport.trainAccuracy = epochReport.items > 0 ? correct / epochReport.items : 0;
    epochReport.ms = Date.now() - epochStarted;
    report.epochs.push(epochReport);
  }
  report.timings = {
    totalMs: Date.now() - started,
    medianStepMs: stepTimes.length > 0 ? median(stepTimes) : 0,
    imagesPerSecond: report.items / Math.max((Date.now() - started) / 1000, 1e-9),
  };
  if (checkpoint && step % checkpoint.every !== 0) await writeCheckpoint(settings.epochs, undefined);
  return { model: await finish(), report };
}
