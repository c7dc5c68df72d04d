/** What a fine-tuning run reports as it goes and at its end, and what it gives back when it stops early. */
import { VbpError } from '../errors';
import type { NativeTrainer } from '../native/addon';
import type { Model } from '../model/model';

export interface FinetuneProgress {
  epoch: number;
  step: number;
  totalSteps: number | undefined;
  loss: number;
  lr: number;
  /** Over every rank in a data-parallel run. */
  imagesPerSecond: number;
  elapsedMs: number;
  /** Estimated time left, when the number of steps is known. */
  etaMs: number | undefined;
  /** Data-parallel: items per step over every rank (batchSize x ranks), and the time in collectives so far. */
  globalBatch?: number;
  communicationMs?: number;
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
  /** `communicationMs`: time in collectives (data-parallel runs), a part of totalMs. */
  timings: { totalMs: number; medianStepMs: number; imagesPerSecond: number; communicationMs?: number };
  /** Data-parallel: the ranks and the items per step over all of them; `items` and the losses count every rank. */
  distributed?: { worldSize: number; globalBatch: number };
  /** Mixed precision: the autocast dtype; fp16 also the steps skipped for Inf/NaN gradients and the last loss scale. */
  precision?: { kind: 'bf16' | 'fp16'; skippedSteps: number; lossScale: number };
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

  constructor(
    error: VbpError,
    model: Model | undefined,
    report: FinetuneReport | undefined,
    checkpoint?: { path: string; step: number },
  ) {
    super(error.code, error.message, { cause: error.cause ?? error, detail: error.detail });
    this.name = 'FinetuneError';
    this.model = model;
    this.report = report;
    if (checkpoint) this.checkpoint = checkpoint;
  }
}

export function emptyReport(): FinetuneReport {
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

export function modeOf(info: ReturnType<NativeTrainer['info']>): FinetuneReport['mode'] {
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
    note: info.honoursTrainMode
      ? 'trained in train mode (the scripted code reads `training`)'
      : 'no op of this graph depends on train/eval mode',
  };
}
