/** vbp finetune: the paper's recovery step, distillation from the original model into the pruned one. */
import type { Command } from 'commander';
import { VbpError } from '../../errors';
import { TRAIN_TRANSFORMS } from '../../data/augment';
import { FINETUNE_DEFAULTS, FinetuneError, PRECISIONS, finetune, type FinetuneOptions } from '../../recovery/finetune';
import type { Model } from '../../model/model';
import { SCHEDULES } from '../../recovery/schedule';
import { percent } from '../../util/format';
import { checkReadableFile, writeAllAtomically } from '../../util/files';
import { checkingOption, parseChoice, parseInteger, parseNumber, usageError } from '../args';
import { meteredDataset } from '../../data/meter';
import {
  dataRate,
  openModel,
  progressFor,
  SkipLog,
  withCommon,
  withData,
  type CalibrationOptions,
  type GlobalOptions,
  type Run,
} from '../context';
import { openDataset, type DataOptions } from '../data-source';
import { joinGroupFromEnvironment, writesOutputs } from '../ranks';
import { KeptWorkError, interruptedBy, interruptible, signalName } from '../interrupt';
import { checkOutput, print } from '../output';

/** vbp finetune's options, as commander gives them. */
interface FinetuneCommandOptions extends GlobalOptions, DataOptions, CalibrationOptions {
  teacher?: string;
  out?: string;
  epochs?: string;
  lr?: string;
  weightDecay?: string;
  schedule?: string;
  warmupSteps?: string;
  temperature?: string;
  alpha?: string;
  clipNorm?: string;
  trainable?: string;
  checkpoint?: string;
  checkpointEvery?: string;
  resume?: string;
  precision?: string;
  trainTransform?: string;
  force?: boolean;
}

/** A number option's text, or the default's. */
const orDefault = (value: string | undefined, fallback: number): string => value ?? String(fallback);

/** The recipe from the command line (checked before any work). */
function recipeOf(options: FinetuneCommandOptions): Omit<FinetuneOptions, 'data' | 'teacher'> {
  const batchSize = parseInteger(orDefault(options.batchSize, FINETUNE_DEFAULTS.batchSize), '--batch-size', 1);
  const trainable = options.trainable ?? 'all';
  const every =
    options.checkpointEvery !== undefined ? parseInteger(options.checkpointEvery, '--checkpoint-every', 1) : undefined;
  if (every !== undefined && options.checkpoint === undefined)
    throw usageError('--checkpoint-every', 'needs --checkpoint FILE');
  if (options.alpha !== undefined && options.teacher === undefined)
    throw usageError('--alpha', 'weighs the distillation term, which needs --teacher');
  if (options.temperature !== undefined && options.teacher === undefined)
    throw usageError('--temperature', 'is the distillation temperature, which needs --teacher');
  return {
    epochs: parseInteger(orDefault(options.epochs, FINETUNE_DEFAULTS.epochs), '--epochs', 1),
    stepsPerEpoch:
      options.limit !== undefined ? Math.ceil(parseInteger(options.limit, '--limit', 1) / batchSize) : undefined,
    batchSize,
    lr: parseNumber(orDefault(options.lr, FINETUNE_DEFAULTS.lr), '--lr', 0, Infinity, true),
    weightDecay: parseNumber(orDefault(options.weightDecay, FINETUNE_DEFAULTS.weightDecay), '--weight-decay', 0),
    schedule: parseChoice(options.schedule ?? FINETUNE_DEFAULTS.schedule, '--schedule', SCHEDULES),
    warmupSteps: parseInteger(orDefault(options.warmupSteps, FINETUNE_DEFAULTS.warmupSteps), '--warmup-steps', 0),
    temperature: parseNumber(
      orDefault(options.temperature, FINETUNE_DEFAULTS.temperature),
      '--temperature',
      0,
      Infinity,
      true,
    ),
    ...(options.teacher !== undefined
      ? { alpha: parseNumber(orDefault(options.alpha, FINETUNE_DEFAULTS.alpha), '--alpha', 0, 1) }
      : {}),
    clipNorm: parseNumber(orDefault(options.clipNorm, FINETUNE_DEFAULTS.clipNorm), '--clip-norm', 0),
    trainable:
      trainable === 'all' || trainable === 'mlp'
        ? trainable
        : trainable
            .split(',')
            .map((p) => p.trim())
            .filter(Boolean),
    seed: parseInteger(orDefault(options.seed, FINETUNE_DEFAULTS.seed), '--seed', 0, 2 ** 32 - 1),
    ...(options.precision !== undefined
      ? { precision: parseChoice(options.precision, '--precision', PRECISIONS) }
      : {}),
    ...(options.trainTransform !== undefined
      ? { trainTransform: parseChoice(options.trainTransform, '--train-transform', TRAIN_TRANSFORMS) }
      : {}),
    // Ctrl-C keeps a checkpoint of the last completed step (atAbort), so that --resume loses nothing.
    ...(options.checkpoint !== undefined
      ? { checkpoint: { path: options.checkpoint, every: every ?? 100, atAbort: true } }
      : {}),
    ...(options.resume !== undefined ? { resume: options.resume } : {}),
  };
}

/**
 * Why fine-tuning stopped, and what was kept: after Ctrl-C with --checkpoint, the checkpoint written at the
 * interruption and how to continue it. A checkpoint that cannot be resumed (other settings, another model,
 * not a checkpoint) is bad usage of --resume.
 */
async function failure(
  error: unknown,
  recipe: Omit<FinetuneOptions, 'data' | 'teacher'>,
  totalSteps: number,
): Promise<never> {
  if (!(error instanceof FinetuneError)) {
    if (
      recipe.resume !== undefined &&
      error instanceof VbpError &&
      (/^resume: /.test(error.message) || error.code === 'MODEL_LOAD')
    ) {
      throw usageError('--resume', error.message.replace(/^resume: /, ''), error.code);
    }
    throw error;
  }
  await error.model?.dispose();
  const signal = interruptedBy();
  if (error.code !== 'ABORTED' || !signal) throw error;
  const steps = error.report?.steps ?? 0;
  const at = `interrupted by ${signalName(signal)} after ${steps} of ${totalSteps} steps`;
  if (error.checkpoint) {
    const file = error.checkpoint.path;
    throw new KeptWorkError(
      error,
      `${at}; kept a checkpoint at step ${error.checkpoint.step} in '${file}': run the same command with --resume '${file}' to continue`,
      {
        kept: file,
        step: error.checkpoint.step,
        totalSteps,
        resume: `the same command with --resume '${file}'`,
      },
    );
  }
  const message = !recipe.checkpoint
    ? `${at}; nothing was kept (with --checkpoint FILE an interruption keeps a checkpoint that --resume continues)`
    : steps === 0
      ? `${at}; no step had completed, so nothing was kept`
      : `${at}: ${error.message}`;
  throw new KeptWorkError(error, message, { kept: null, step: steps, totalSteps });
}

async function finetuneCommand(file: string, options: FinetuneCommandOptions): Promise<void> {
  const recipe = recipeOf(options);
  if (Array.isArray(recipe.trainable) && recipe.trainable.length === 0)
    throw usageError('--trainable', 'give all, mlp or comma-separated parameter-name prefixes');
  const teacherFile = options.teacher;
  const inputs = [file, ...(teacherFile !== undefined ? [teacherFile] : [])];
  for (const [option, path] of [
    ['--teacher', options.teacher],
    ['--resume', options.resume],
  ] as const) {
    if (path !== undefined)
      checkingOption(option, () => checkReadableFile(path, option === '--teacher' ? 'teacher model' : 'checkpoint'));
  }
  const out = checkOutput(options.out, '--out', inputs, options.force);
  if (recipe.checkpoint) {
    const checkpoint = checkOutput(recipe.checkpoint.path, '--checkpoint', [...inputs, out], true);
    recipe.checkpoint.path = checkpoint;
  }
  const group = await joinGroupFromEnvironment();
  // --limit counts the items of an epoch over every rank.
  if (group && recipe.stepsPerEpoch !== undefined)
    recipe.stepsPerEpoch = Math.ceil(
      parseInteger(options.limit!, '--limit', 1) / (recipe.batchSize! * group.worldSize),
    );
  const student = await openModel(file, options);
  let teacher: Model | undefined;
  try {
    teacher = teacherFile !== undefined ? await openModel(teacherFile, options, '--teacher') : undefined;
    const source = openDataset(options, student.card ?? teacher?.card, file, 'train', true);
    const { normalisation } = source;
    const meter = meteredDataset(source.dataset);
    const dataset = meter.dataset;
    // A rank of a data-parallel run trains on ceil(size / ranks) items (--batch-size is per rank, as in DDP).
    const perRank = Math.ceil(dataset.size / (group?.worldSize ?? 1));
    const perEpoch = Math.min(recipe.stepsPerEpoch ?? Infinity, Math.ceil(perRank / recipe.batchSize!));
    const progress = progressFor(options);
    progress.start('fine-tuning', perEpoch * recipe.epochs!, true);
    const skipped = new SkipLog();
    const { model, report } = await interruptible((signal) =>
      finetune(student, {
        ...recipe,
        teacher,
        data: dataset,
        signal,
        skipBadItems: Boolean(options.skipBadImages),
        onSkip: skipped.record,
        onProgress: (p) =>
          progress.update(
            p.step,
            `loss ${p.loss.toFixed(4)} | ${p.imagesPerSecond.toFixed(0)} img/s (${dataRate(meter)})` +
              (p.globalBatch !== undefined
                ? ` | global batch ${p.globalBatch}, ${(((p.communicationMs ?? 0) / Math.max(p.elapsedMs, 1)) * 100).toFixed(0)} % communicating`
                : ''),
          ),
      }),
    )
      .catch((error: unknown) => failure(error, recipe, perEpoch * recipe.epochs!))
      .finally(() => progress.stop());
    try {
      // Every rank ends with the same weights; rank 0 writes them.
      if (writesOutputs())
        await writeAllAtomically(model.outputsFor(out, { cardBeside: true }), { overwrite: Boolean(options.force) });
    } finally {
      await model.dispose();
    }
    const last = report.epochs[report.epochs.length - 1];
    const human = [
      `fine-tuned ${report.steps} steps (${recipe.epochs} epoch(s), batch ${recipe.batchSize}` +
        `${report.distributed ? ` per rank on ${report.distributed.worldSize} ranks (global ${report.distributed.globalBatch})` : ''}, lr ${recipe.lr} ${recipe.schedule}` +
        `${teacher ? `, distillation alpha ${recipe.alpha} T ${recipe.temperature}` : ', cross-entropy only'}) on ${dataset.description} (normalisation: ${normalisation}) -> ${out}`,
      `loss ${report.loss[0]?.toFixed(4) ?? '-'} -> ${report.loss[report.loss.length - 1]?.toFixed(4) ?? '-'}; last epoch: mean loss ${last?.meanLoss.toFixed(4) ?? '-'}, ` +
        `train top-1 ${last ? percent(last.trainAccuracy) : '-'} %; ${(report.timings.totalMs / 1000).toFixed(1)} s, ${report.timings.imagesPerSecond.toFixed(0)} images/s`,
      report.mode.note,
      ...(skipped.count ? [skipped.describe()] : []),
    ].join('\n');
    print(options, human, {
      out,
      data: dataset.description,
      normalisation,
      recipe: { ...recipe, teacher: options.teacher ?? null },
      skipped: skipped.count,
      report,
    });
  } finally {
    await Promise.all([student.dispose(), teacher?.dispose()]);
  }
}

export function registerFinetune(program: Command, run: Run): void {
  withData(
    withCommon(program.command('finetune').argument('<model>', 'the (pruned) TorchScript model to train')),
    'train',
    false,
    {
      batchSize: String(FINETUNE_DEFAULTS.batchSize),
      limitHelp: 'a short epoch: at most n items per epoch, over all ranks (a different shuffled subset each epoch)',
    },
  )
    .description(
      "fine-tune a model with knowledge distillation from a teacher (the paper's recovery step); writes a TorchScript model",
    )
    .option('--teacher <file>', 'the unpruned model to distil from (without it: cross-entropy only)')
    .option('--out <file>', 'fine-tuned model file to write')
    .option('--epochs <n>', `passes over the data (default ${FINETUNE_DEFAULTS.epochs})`)
    .option(
      '--lr <x>',
      `peak learning rate of AdamW (default ${FINETUNE_DEFAULTS.lr}, the paper's; small models: 1e-4)`,
    )
    .option('--weight-decay <x>', `AdamW weight decay (default ${FINETUNE_DEFAULTS.weightDecay})`)
    .option('--schedule <kind>', `${SCHEDULES.join(' or ')} (default ${FINETUNE_DEFAULTS.schedule}), stepped per batch`)
    .option('--warmup-steps <n>', 'linear warm-up steps (default 0)')
    .option('--temperature <t>', `distillation temperature (default ${FINETUNE_DEFAULTS.temperature})`)
    .option('--alpha <a>', `weight of the distillation term in [0, 1] (default ${FINETUNE_DEFAULTS.alpha})`)
    .option('--clip-norm <x>', 'clip the gradient norm to this (default 0: no clipping)')
    .option('--precision <p>', 'fp32 (default), bf16 (autocast; CPU and CUDA) or fp16 (CUDA, dynamic loss scale)')
    .option(
      '--train-transform <kind>',
      "none (default: the data's own items) or crop-flip (RandomResizedCrop and horizontal flip, seeded per epoch and item)",
    )
    .option(
      '--trainable <what>',
      'all (default), mlp (only fc1/fc2 of the MLP blocks) or comma-separated parameter-name prefixes',
    )
    .option('--seed <n>', 'seed of the data order and of dropout (default 0)')
    .option(
      '--checkpoint <file>',
      'write the model and optimizer state here every --checkpoint-every steps (atomically)',
    )
    .option('--checkpoint-every <n>', 'steps between checkpoints (default 100)')
    .option('--resume <file>', 'continue the run that wrote this checkpoint (same options)')
    .option('--force', 'replace an existing --out file')
    .action((model: string, options: FinetuneCommandOptions) => run(options, () => finetuneCommand(model, options)));
}
