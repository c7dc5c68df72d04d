/**
 * Fine-tuning with knowledge distillation, the paper's recovery step after pruning, trained by LibTorch's
 * autograd in the native core on the TorchScript model itself:
 *   loss = (1 - alpha) * CE(student, y) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
 * (plain cross-entropy without a teacher), AdamW, a cosine or constant schedule stepped per batch,
 * optional gradient clipping and a frozen subset. The inputs stay untouched; the result is a new model.
 * The options are in settings.ts, the run's steps in training-run.ts, its report in report.ts.
 */
import { agreeAcrossRanks, parameterSignature } from '../distributed/agreement';
import { distributedInfo } from '../distributed/group';
import { VbpError } from '../errors';
import { loadModel, Model } from '../model/model';
import type { NativeTrainer, NativeTrainerOptions } from '../native/addon';
import { readCheckpointState, type CheckpointState } from './checkpoint';
import type { FinetuneResult } from './report';
import { isDataset, settingsOf, stepsPerEpochOf, type CheckpointSettings, type FinetuneOptions } from './settings';
import { TrainingRun } from './training-run';

export { FINETUNE_DEFAULTS, PRECISIONS, type FinetuneOptions, type Precision } from './settings';
export {
  FinetuneError,
  type EpochReport,
  type FinetuneProgress,
  type FinetuneReport,
  type FinetuneResult,
} from './report';

async function trainablePrefixes(
  student: Model,
  trainable: CheckpointSettings['trainable'],
): Promise<string[] | undefined> {
  if (trainable === 'all') return undefined;
  if (trainable === 'mlp') return (await student.mlps()).flatMap((b) => [b.fc1, b.fc2]);
  return trainable;
}

/**
 * Fine-tunes `student` (typically a pruned model) and returns a new model with the report. Rejects with a
 * FinetuneError (NON_FINITE for a NaN/Inf loss, ABORTED for the signal) holding the last good weights.
 */
export async function finetune(student: Model, options: FinetuneOptions): Promise<FinetuneResult> {
  if (!(student instanceof Model))
    throw new VbpError('INVALID_ARGUMENT', 'finetune(student, options): student must be a Model');
  if (typeof options !== 'object' || options === null)
    throw new VbpError('INVALID_ARGUMENT', 'finetune(student, options): options must be an object with data');
  const group = options.distributed === false ? null : distributedInfo();
  if (options.distributed === true && !group)
    throw new VbpError(
      'DISTRIBUTED',
      'finetune(): distributed: true needs a process group: call initDistributed() first',
    );
  const settings = settingsOf(options, group?.worldSize);
  const perEpoch = stepsPerEpochOf(settings, options.data);
  if (group) {
    await agreeAcrossRanks('finetune()', {
      settings,
      model: parameterSignature(student),
      data: isDataset(options.data) ? { size: options.data.size, itemShape: options.data.itemShape } : 'a function',
      resume: options.resume ?? null,
    });
  }
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
  const nativeOptions: NativeTrainerOptions = {
    weightDecay,
    temperature,
    alpha,
    clipNorm,
    seed,
    ...(prefixes ? { trainable: prefixes } : {}),
    ...(group ? { distributed: true } : {}),
    ...(settings.precision ? { precision: settings.precision } : {}),
  };
  let trainer: NativeTrainer;
  try {
    trainer = await source.enqueue((h) => h.createTrainer(nativeOptions, state !== undefined));
  } finally {
    if (source !== student) await source.dispose();
  }
  try {
    return await new TrainingRun({ trainer, student, options, settings, perEpoch, totalSteps, state, group }).run();
  } finally {
    trainer.dispose();
  }
}
