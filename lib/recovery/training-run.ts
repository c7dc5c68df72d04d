/**
 * One fine-tuning run on a native trainer, step by step: the epochs' batches (the next one, and the
 * teacher's logits for it, prepared while the current step trains), the learning rate of each step, the
 * report and progress, the periodic checkpoints and the one at an interruption, and the model at the end or
 * at a failure.
 */
import { VbpError, callNative, callNativeSync } from '../errors';
import { batches, type Batch } from '../data/dataset';
import type { DistributedInfo } from '../distributed/group';
import type { ModelCard } from '../formats/model-card';
import { Model } from '../model/model';
import type { NativeStepResult, NativeTrainer } from '../native/addon';
import { isTensor, type Tensor } from '../tensor';
import { writeAtomically } from '../util/files';
import { median } from '../util/quantiles';
import { checkpointState, type CheckpointState, type PartialEpoch } from './checkpoint';
import {
  emptyReport,
  FinetuneError,
  modeOf,
  type EpochReport,
  type FinetuneReport,
  type FinetuneResult,
} from './report';
import { learningRate } from './schedule';
import { isDataset, type CheckpointSettings, type FinetuneOptions } from './settings';

type LabelledBatch = Pick<Batch, 'input' | 'labels'>;

/** A batch ready for a step: its items and labels, and the teacher's logits for them (null without a teacher). */
interface PreparedBatch {
  batch: LabelledBatch;
  logits: Tensor | null;
}

/** The order of epoch `epoch`'s items: a different shuffle every epoch, the same for the same seed. */
function epochSeed(seed: number, epoch: number): number {
  return (seed * 1000003 + epoch) >>> 0;
}

/** The batches of one epoch, after the first `skip`. */
function epochBatches(
  options: FinetuneOptions,
  settings: CheckpointSettings,
  epoch: number,
  skip: number,
  group: DistributedInfo | null,
): AsyncIterable<LabelledBatch> {
  const data = options.data;
  if (isDataset(data)) {
    const { skipBadItems, onSkip } = options;
    return batches(data, {
      batchSize: settings.batchSize,
      shuffle: true,
      seed: epochSeed(settings.seed, epoch),
      skipBadItems,
      onSkip,
      ...(group ? { shard: { rank: group.rank, worldSize: group.worldSize } } : {}),
      // Its own stream, apart from the order's: the crops do not move when the order's seed use changes.
      ...(settings.trainTransform === 'crop-flip'
        ? { augment: { seed: (epochSeed(settings.seed, epoch) ^ 0x5bd1e995) >>> 0 } }
        : {}),
    }).skipBatches(skip);
  }
  return (async function* () {
    let seen = 0;
    for await (const batch of data(epoch)) if (seen++ >= skip) yield batch;
  })();
}

function checkBatch(batch: LabelledBatch): void {
  if (!batch || !isTensor(batch.input) || !(batch.labels instanceof Int32Array)) {
    throw new VbpError('DATA', 'finetune(): each batch must be { input: Tensor, labels: Int32Array }');
  }
  if (batch.labels.length !== batch.input.shape[0]) {
    throw new VbpError(
      'DATA',
      `finetune(): a batch has ${batch.input.shape[0]} items but ${batch.labels.length} labels`,
    );
  }
  if (batch.labels.some((l) => l < 0)) throw new VbpError('DATA', 'finetune(): a batch has items without a label (-1)');
}

/** The student's card with a note of the fine-tuning. */
function tunedCard(
  card: ModelCard | undefined,
  settings: CheckpointSettings,
  report: FinetuneReport,
  teacher: Model | undefined,
): ModelCard | undefined {
  if (!card) return undefined;
  const history = Array.isArray(card.finetuning) ? card.finetuning : card.finetuning ? [card.finetuning] : [];
  const { stepsPerEpoch, ...recipe } = settings;
  return {
    ...card,
    finetuning: [
      ...history,
      {
        tool: 'torch-vbp',
        ...recipe,
        ...(stepsPerEpoch === null ? {} : { stepsPerEpoch }),
        steps: report.steps,
        items: report.items,
        ...(teacher?.source ? { teacherFile: teacher.source } : {}),
      },
    ],
  };
}

/** The batches of one epoch, read one ahead of the step that trains on them. */
class EpochFeed {
  private readonly iterator: AsyncIterator<LabelledBatch>;
  private fetched: number;

  constructor(
    private readonly run: TrainingRun,
    epoch: number,
    skip: number,
    private readonly perEpoch: number | undefined,
  ) {
    this.fetched = skip;
    this.iterator = epochBatches(run.options, run.settings, epoch, skip, run.group)[Symbol.asyncIterator]();
  }

  /** The next batch with the teacher's logits, or undefined at the end of the epoch. */
  async next(): Promise<PreparedBatch | undefined> {
    if (this.perEpoch !== undefined && this.fetched >= this.perEpoch) return undefined;
    const next = await this.iterator.next();
    if (next.done) return undefined;
    this.fetched++;
    checkBatch(next.value);
    const teacher = this.run.options.teacher;
    const logits = teacher ? await teacher.forward(next.value.input) : null;
    if (logits !== null && !isTensor(logits))
      throw new VbpError('DATA', "finetune(): the teacher's forward must return one tensor of logits");
    return { batch: next.value, logits: logits as Tensor | null };
  }

  async close(): Promise<void> {
    await this.iterator.return?.(undefined);
  }
}

/** What one epoch has done so far (a resumed epoch starts from what its checkpoint recorded). */
class EpochTally {
  readonly report: EpochReport;
  private correct: number;
  private lossSum: number;
  private readonly started: number;

  constructor(epoch: number, resumed: PartialEpoch | undefined) {
    this.started = Date.now() - (resumed?.ms ?? 0);
    this.report = {
      epoch,
      steps: resumed?.steps ?? 0,
      items: resumed?.items ?? 0,
      meanLoss: 0,
      trainAccuracy: 0,
      ms: 0,
    };
    this.correct = resumed?.correct ?? 0;
    this.lossSum = resumed?.lossSum ?? 0;
  }

  add(result: NativeStepResult): void {
    this.report.steps++;
    this.report.items += result.count;
    this.correct += result.correct;
    this.lossSum += result.loss;
  }

  /** The epoch so far, as a checkpoint records it. */
  partial(): PartialEpoch {
    return {
      steps: this.report.steps,
      items: this.report.items,
      correct: this.correct,
      lossSum: this.lossSum,
      ms: Date.now() - this.started,
    };
  }

  finish(): EpochReport {
    this.report.meanLoss = this.report.steps > 0 ? this.lossSum / this.report.steps : 0;
    this.report.trainAccuracy = this.report.items > 0 ? this.correct / this.report.items : 0;
    this.report.ms = Date.now() - this.started;
    return this.report;
  }
}

/** What a run is made of: the trainer (on a copy of the student), the checked options, and where to start. */
interface RunSetup {
  trainer: NativeTrainer;
  student: Model;
  options: FinetuneOptions;
  settings: CheckpointSettings;
  /** Steps per epoch, when known (a Dataset, or stepsPerEpoch). */
  perEpoch: number | undefined;
  totalSteps: number | undefined;
  /** The state of the checkpoint the run resumes, if it does. */
  state: CheckpointState | undefined;
  /** The process group of a data-parallel run. */
  group: DistributedInfo | null;
}

export class TrainingRun {
  readonly options: FinetuneOptions;
  readonly settings: CheckpointSettings;
  readonly group: DistributedInfo | null;
  private readonly trainer: NativeTrainer;
  private readonly student: Model;
  private readonly perEpoch: number | undefined;
  private readonly totalSteps: number | undefined;
  private readonly state: CheckpointState | undefined;
  private readonly report: FinetuneReport;
  /** When the run started, counting the time of the run a checkpoint continues. */
  private readonly started: number;
  /** When this process's part of the run started, and at which step (for the time left). */
  private readonly runStarted = Date.now();
  private readonly firstStep: number;
  private readonly stepTimes: number[] = [];
  private step: number;

  constructor(setup: RunSetup) {
    this.trainer = setup.trainer;
    this.student = setup.student;
    this.options = setup.options;
    this.settings = setup.settings;
    this.perEpoch = setup.perEpoch;
    this.totalSteps = setup.totalSteps;
    this.state = setup.state;
    this.group = setup.group;
    const state = setup.state;
    this.report = state ? structuredClone(state.report) : emptyReport();
    const info = callNativeSync(() => this.trainer.info());
    this.report.mode = modeOf(info);
    this.report.parameters = { total: info.parameters, trainable: info.trainableParameters };
    if (state) this.report.resumedAt = state.step;
    if (this.settings.precision && this.settings.precision !== 'fp32')
      this.report.precision ??= { kind: this.settings.precision, skippedSteps: 0, lossScale: 1 };
    if (this.group) {
      this.report.distributed = {
        worldSize: this.group.worldSize,
        globalBatch: this.settings.batchSize * this.group.worldSize,
      };
      this.report.timings.communicationMs ??= 0;
    }
    this.started = Date.now() - this.report.timings.totalMs;
    this.firstStep = this.report.steps;
    this.step = state?.step ?? 0;
  }

  /** Every epoch (from the checkpoint's, when resumed), then the final checkpoint and the tuned model. */
  async run(): Promise<FinetuneResult> {
    for (let epoch = this.state?.epoch ?? 0; epoch < this.settings.epochs; epoch++)
      this.report.epochs.push(await this.runEpoch(epoch));
    this.report.timings = {
      ...this.report.timings,
      totalMs: Date.now() - this.started,
      medianStepMs: this.stepTimes.length > 0 ? median(this.stepTimes) : 0,
      imagesPerSecond: this.report.items / Math.max((Date.now() - this.started) / 1000, 1e-9),
    };
    const checkpoint = this.options.checkpoint;
    if (checkpoint && this.step % checkpoint.every !== 0) await this.writeCheckpoint(this.settings.epochs, undefined);
    return { model: await this.tunedModel(), report: this.report };
  }

  private async runEpoch(epoch: number): Promise<EpochReport> {
    const resumed = this.state && epoch === this.state.epoch ? this.state.partialEpoch : undefined;
    const tally = new EpochTally(epoch, resumed);
    const feed = new EpochFeed(this, epoch, tally.report.steps, this.perEpoch);
    try {
      let pending = feed.next();
      for (;;) {
        const current = await pending;
        if (!current) break;
        // Data-parallel ranks stop together: the step shares the request, and every rank stops before it.
        if (this.options.signal?.aborted && !this.group)
          throw new VbpError('ABORTED', `fine-tuning was cancelled after ${this.step} steps`);
        // Reading the next batch, and the teacher's logits for it, overlaps the current step.
        await this.trainStep(current, epoch, tally, () => {
          pending = feed.next();
          pending.catch(() => undefined);
        });
      }
    } catch (error) {
      await feed.close();
      return this.stopped(error, epoch, tally);
    }
    await feed.close();
    return tally.finish();
  }

  /**
   * One optimizer step on a prepared batch (`prepareNext` starts reading the next one once the step's
   * clock runs), recorded in the report, reported, and checkpointed when due.
   */
  private async trainStep(
    current: PreparedBatch,
    epoch: number,
    tally: EpochTally,
    prepareNext: () => void,
  ): Promise<void> {
    const lr = learningRate(
      this.settings.schedule,
      this.settings.lr,
      this.step,
      this.totalSteps ?? this.step + 1,
      this.settings.warmupSteps,
    );
    const stepStarted = performance.now();
    prepareNext();
    const result = await callNative(() =>
      this.trainer.step(
        current.batch.input,
        current.batch.labels,
        current.logits,
        lr,
        this.step,
        Boolean(this.options.signal?.aborted),
      ),
    );
    this.stepTimes.push(performance.now() - stepStarted);
    this.step++;
    this.record(result, lr);
    tally.add(result);
    this.reportProgress(epoch, result.loss, lr);
    const checkpoint = this.options.checkpoint;
    if (checkpoint && this.step % checkpoint.every === 0) await this.writeCheckpoint(epoch, tally.partial());
  }

  private record(result: NativeStepResult, lr: number): void {
    const report = this.report;
    report.steps = this.step;
    report.items += result.count;
    report.loss.push(result.loss);
    report.crossEntropy.push(result.crossEntropy);
    report.distillation.push(result.distillation);
    report.lr.push(lr);
    report.gradNorm.push(result.gradNorm);
    if (this.group) report.timings.communicationMs = (report.timings.communicationMs ?? 0) + result.communicationMs;
    if (report.precision) {
      report.precision.lossScale = result.lossScale;
      if (result.skipped) report.precision.skippedSteps++;
    }
  }

  private reportProgress(epoch: number, loss: number, lr: number): void {
    const elapsedMs = Date.now() - this.started;
    const { totalSteps, step } = this;
    this.options.onProgress?.({
      epoch,
      step,
      totalSteps,
      loss,
      lr,
      imagesPerSecond: this.report.items / Math.max(elapsedMs / 1000, 1e-9),
      elapsedMs,
      etaMs:
        totalSteps === undefined
          ? undefined
          : ((Date.now() - this.runStarted) / (step - this.firstStep)) * (totalSteps - step),
      ...(this.report.distributed
        ? {
            globalBatch: this.report.distributed.globalBatch,
            communicationMs: this.report.timings.communicationMs ?? 0,
          }
        : {}),
    });
  }

  private async writeCheckpoint(epoch: number, partialEpoch: PartialEpoch | undefined): Promise<void> {
    const checkpoint = this.options.checkpoint;
    // Every rank holds the same weights: rank 0 alone writes them.
    if (!checkpoint || (this.group && this.group.rank !== 0)) return;
    this.report.timings.totalMs = Date.now() - this.started;
    const stateJson = JSON.stringify(checkpointState(this.settings, this.report, epoch, partialEpoch));
    const card = this.student.card ? JSON.stringify(this.student.card) : '';
    await writeAtomically(
      checkpoint.path,
      (temporary) => callNative(() => this.trainer.checkpoint(temporary, card, stateJson)),
      { overwrite: true },
    );
  }

  /**
   * The run stopped in an epoch: a FinetuneError with the weights of the last completed step. Cancelled
   * between steps with `checkpoint.atAbort`, the state is that of the last completed step, so a checkpoint
   * keeps it exactly.
   */
  private async stopped(error: unknown, epoch: number, tally: EpochTally): Promise<never> {
    const checkpoint = this.options.checkpoint;
    if (checkpoint?.atAbort && error instanceof VbpError && error.code === 'ABORTED' && this.report.steps > 0) {
      try {
        await this.writeCheckpoint(epoch, tally.partial());
      } catch (writeError) {
        const why = writeError instanceof Error ? writeError.message : String(writeError);
        return this.fail(
          new VbpError(
            'ABORTED',
            `${error.message}; writing the checkpoint '${checkpoint.path}' at the interruption failed: ${why}`,
            { cause: writeError },
          ),
        );
      }
      return this.fail(error, { path: checkpoint.path, step: this.report.steps });
    }
    return this.fail(error);
  }

  private async fail(error: unknown, written?: { path: string; step: number }): Promise<never> {
    const coded = error instanceof VbpError ? error : new VbpError('INTERNAL', String(error), { cause: error });
    throw new FinetuneError(coded, this.report.steps > 0 ? await this.tunedModel() : undefined, this.report, written);
  }

  /** The student's weights now, as a new model with the card noting the fine-tuning. */
  private async tunedModel(): Promise<Model> {
    const handle = await callNative(() => this.trainer.snapshot());
    return new Model(
      handle,
      this.student.source,
      tunedCard(this.student.card, this.settings, this.report, this.options.teacher),
    );
  }
}
