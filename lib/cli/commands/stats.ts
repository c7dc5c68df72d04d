/**
 * vbp stats: calibration statistics of every MLP block, written to a safetensors file. A run stopped by
 * Ctrl-C (or a failure after some batches) keeps what it gathered in OUT.partial.safetensors, and
 * --resume continues it exactly (the batches it holds are skipped).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { table } from '../../util/format';
import { CalibrationError } from '../../statistics/collector';
import { Stats, type StatsInfo } from '../../statistics/stats';
import { checkReadableFile } from '../../util/files';
import { checkingOption, parseChoice, parseDevice, parseInteger, parseShare, readingInput, usageError } from '../args';
import { shardOf } from '../../data/shard';
import {
  calibrate,
  calibrationSettings,
  openModel,
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
import { checkOutput, print, warn, type OutputOptions } from '../output';

/** vbp stats's options, as commander gives them. */
interface StatsCommandOptions extends GlobalOptions, DataOptions, CalibrationOptions {
  covariance?: boolean;
  snip?: boolean;
  covarianceProduct?: string;
  covarianceSampling?: string;
  shard?: string;
  devices?: string;
  out?: string;
  resume?: string;
  force?: boolean;
}

/** --shard I/N. */
function parseShard(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  if (!match) throw usageError('--shard', `must be I/N such as 0/8, got '${value}'`);
  const count = parseInteger(match[2], '--shard', 1);
  const index = parseInteger(match[1], '--shard', 0);
  if (index >= count) throw usageError('--shard', `I must be below N, got ${value}`);
  return { index, count };
}

/** --devices cuda:0,cuda:1 */
function parseDevices(value: string): string[] {
  const devices = value.split(',').map((d) => d.trim());
  if (devices.some((d) => d === ''))
    throw usageError('--devices', `must be a comma-separated list such as cuda:0,cuda:1, got '${value}'`);
  return devices.map((d) => parseDevice(d, '--devices'));
}

/** What decides which batches a calibration run sees: a resumed run must have the same. */
interface StatsRun {
  model: string;
  data: string;
  options: Record<string, string | boolean | null>;
  limit: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
}

/** The record inside partial statistics (their info.interrupted): the run, and how far it got. */
interface Interruption {
  run: StatsRun;
  /** Batches and items the whole run would have. */
  batches: number;
  items: number;
}

type PartialInfo = StatsInfo & { interrupted?: Interruption };

/** Options whose values change the calibration batches (the data, how it is read, normalised and sampled). */
const RUN_OPTIONS = [
  'data',
  'split',
  'labels',
  'inputShape',
  'mean',
  'std',
  'raw',
  'scale',
  'crop',
  'resize',
  'interpolation',
  'channels',
  'classMap',
  'skipBadImages',
  'shard',
  'covariance',
  'snip',
  'covarianceProduct',
  'covarianceSampling',
] as const;

/** Where an interrupted run of --out FILE keeps its statistics: FILE.partial.safetensors (beside it). */
function partialPathOf(out: string): string {
  return out.toLowerCase().endsWith('.safetensors')
    ? `${out.slice(0, -'.safetensors'.length)}.partial.safetensors`
    : `${out}.partial`;
}

/** The interruption record of statistics written by an interrupted `vbp stats`, if they are such. */
function interruptionOf(stats: Stats): Interruption | undefined {
  return (stats.info as PartialInfo).interrupted;
}

/** A note for commands that take statistics: these are partial, from an interrupted run. */
export function warnIfPartial(stats: Stats, file: string, options: OutputOptions): void {
  const interrupted = interruptionOf(stats);
  if (!interrupted) return;
  warn(
    options,
    `'${file}' holds the partial statistics of an interrupted vbp stats run (${stats.info.items} of ${interrupted.items} items); ` +
      `finish them with vbp stats ... --resume '${file}'`,
  );
}

function withoutInterruption(stats: Stats): Stats {
  const { interrupted: _interrupted, ...info } = stats.info as PartialInfo;
  return new Stats([...stats.layers], info);
}

/**
 * An option's value in the run record; files by their absolute path, so that another working folder is the same run.
 */
function runValue(key: (typeof RUN_OPTIONS)[number], value: unknown): string | boolean | null {
  if (value === undefined) return null;
  if ((key === 'data' || key === 'labels' || key === 'classMap') && value !== 'fashion-mnist')
    return path.resolve(String(value));
  return value as string | boolean;
}

function runDifferences(saved: StatsRun, current: StatsRun): string[] {
  const flat = (run: StatsRun): Record<string, unknown> => ({
    model: run.model,
    data: run.data,
    ...run.options,
    limit: run.limit,
    batchSize: run.batchSize,
    seed: run.seed,
    shuffle: run.shuffle,
  });
  const [a, b] = [flat(saved), flat(current)];
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((key) => JSON.stringify(a[key] ?? null) !== JSON.stringify(b[key] ?? null))
    .map((key) => `${key}: ${JSON.stringify(a[key] ?? null)} then, ${JSON.stringify(b[key] ?? null)} now`);
}

/** --resume FILE: partial statistics of this very run (same model, data and options), checked before any work. */
async function resumeFrom(file: string, run: StatsRun): Promise<Stats> {
  const partial = await readingInput('--resume', () => Stats.load(file));
  const interrupted = interruptionOf(partial);
  if (!interrupted) {
    throw usageError(
      '--resume',
      `'${file}' holds complete statistics, not those of an interrupted vbp stats run; merge statistics of other data with vbp merge`,
    );
  }
  const changed = runDifferences(interrupted.run, run);
  if (changed.length > 0) {
    throw usageError(
      '--resume',
      `'${file}' was written by a run with other settings (${changed.join('; ')}); give the same model, data and options to continue it`,
    );
  }
  return partial;
}

async function stats(file: string, options: StatsCommandOptions): Promise<void> {
  const out = checkOutput(options.out, '--out', [file], options.force);
  const resumeFile = options.resume !== undefined ? path.resolve(options.resume) : undefined;
  if (resumeFile !== undefined)
    checkingOption('--resume', () => checkReadableFile(resumeFile, 'partial statistics file'));
  const partialFile = partialPathOf(out);
  // An earlier interrupted run of this --out is never replaced by accident.
  if (resumeFile !== partialFile && fs.existsSync(partialFile) && !options.force) {
    throw usageError(
      '--out',
      `'${partialFile}' holds the statistics of an interrupted run for this output: continue it with --resume '${partialFile}', or pass --force to start over`,
      'OUTPUT_EXISTS',
    );
  }
  if (resumeFile !== undefined && options.devices !== undefined)
    throw usageError('--resume', 'cannot be combined with --devices: resume a run on the device it ran on');
  if (options.shard !== undefined) parseShard(options.shard);
  if (options.devices !== undefined) parseDevices(options.devices);
  const group = await joinGroupFromEnvironment();
  if (group) {
    for (const [flag, value] of [
      ['--shard', options.shard],
      ['--devices', options.devices],
      ['--resume', options.resume],
    ] as const)
      if (value !== undefined)
        throw usageError(
          flag,
          `cannot be combined with a data-parallel run (rank ${group.rank} of ${group.worldSize}): the ranks split the data`,
        );
  }
  const model = await openModel(file, options);
  try {
    const source = openDataset(options, model.card, file, 'train');
    const shard = options.shard !== undefined ? parseShard(options.shard) : undefined;
    const dataset = shard ? shardOf(source.dataset, shard.index, shard.count) : source.dataset;
    const normalisation = source.normalisation;
    const devices = options.devices !== undefined ? parseDevices(options.devices) : undefined;
    const skipped = new SkipLog();
    for (const [key, flag] of [
      ['covarianceProduct', '--covariance-product'],
      ['covarianceSampling', '--covariance-sampling'],
    ] as const) {
      if (!options.covariance && options[key] !== undefined) throw usageError(flag, 'is an option of --covariance');
    }
    const covariance = options.covariance
      ? {
          covariance: true,
          covarianceProduct: parseChoice(options.covarianceProduct ?? 'float64', '--covariance-product', [
            'float64',
            'float32',
          ] as const),
          covarianceSampling:
            options.covarianceSampling === undefined || options.covarianceSampling === 'auto'
              ? ('auto' as const)
              : parseShare(options.covarianceSampling, '--covariance-sampling'),
        }
      : {};
    const settings = calibrationSettings(options, dataset);
    const run: StatsRun = {
      model: path.resolve(file),
      data: dataset.description,
      options: Object.fromEntries(RUN_OPTIONS.map((key) => [key, runValue(key, options[key])])),
      ...settings,
    };
    const resume = resumeFile !== undefined ? await resumeFrom(resumeFile, run) : undefined;
    const interruption: Interruption = {
      run,
      batches: Math.ceil(settings.limit / settings.batchSize),
      items: settings.limit,
    };
    let result: Stats;
    try {
      result = await interruptible((signal) =>
        calibrate(model, dataset, options, skipped, {
          ...covariance,
          ...(options.snip ? { snip: true } : {}),
          ...(devices ? { devices } : {}),
          ...(resume ? { resume } : {}),
          signal,
        }),
      );
    } catch (error) {
      throw writesOutputs() ? await keepPartial(error, partialFile, interruption) : error;
    }
    result = withoutInterruption(result);
    // Which shard of a job these are: vbp merge refuses the same shard twice.
    if (shard)
      result = new Stats([...result.layers], {
        ...result.info,
        shard: { index: shard.index, count: shard.count },
      } as StatsInfo);
    // Every rank holds the merged statistics; rank 0 writes the one file.
    if (writesOutputs()) await result.save(out, { overwrite: Boolean(options.force) });
    // The partial statistics are in the result now; a --resume file elsewhere is the user's to remove.
    if (resumeFile === partialFile) fs.rmSync(partialFile, { force: true });
    const summary = result.summary();
    const resumed = resume ? ` (continued from ${resume.info.items} items in '${resumeFile}')` : '';
    print(
      options,
      [
        `${result.info.items} items of ${dataset.description} (normalisation: ${normalisation}), ${result.layers.length} MLP blocks` +
          `${result.hasCovariance ? `, with covariance (${(result.covarianceBytes / 2 ** 20).toFixed(1)} MiB)` : ''} -> ${out}${resumed}`,
        ...(skipped.count ? [skipped.describe()] : []),
        table(
          ['fc1', 'hidden', 'samples', 'mean variance', 'non-finite'],
          summary.layers.map((l) => [
            l.fc1,
            String(l.hidden),
            String(l.count),
            l.meanVariance.toExponential(3),
            String(l.nonFinite),
          ]),
        ),
      ].join('\n'),
      {
        out,
        data: dataset.description,
        normalisation,
        skipped: skipped.count,
        ...(resume ? { resumedFrom: resumeFile, resumedItems: resume.info.items } : {}),
        ...summary,
      },
    );
  } finally {
    await model.dispose();
  }
}

/**
 * A calibration that stopped (Ctrl-C, or a failure such as an unreadable image) after some batches: their
 * statistics go to the partial file, atomically, and the error says so and how to continue.
 */
async function keepPartial(error: unknown, partialFile: string, interruption: Interruption): Promise<unknown> {
  if (!(error instanceof CalibrationError)) return error;
  const signal = interruptedBy();
  const why = error.code === 'ABORTED' && signal ? `interrupted by ${signalName(signal)}` : error.message;
  const partial = error.partial;
  if (!partial || partial.info.batches === 0) {
    return new KeptWorkError(error, `${why}, before the first batch completed; nothing was kept`, { kept: null });
  }
  const done = `${partial.info.batches} of ${interruption.batches} batches (${partial.info.items} of ${interruption.items} items)`;
  try {
    const { interrupted: _earlier, ...info } = partial.info as PartialInfo;
    await new Stats([...partial.layers], { ...info, interrupted: interruption } as PartialInfo).save(partialFile, {
      overwrite: true,
    });
  } catch (saveError) {
    return new KeptWorkError(
      error,
      `${why} after ${done}; keeping them in '${partialFile}' failed too: ${(saveError as Error).message}`,
      { kept: null },
    );
  }
  const command = `the same command with --resume '${partialFile}'`;
  return new KeptWorkError(
    error,
    `${why} after ${done}; kept them in '${partialFile}': run the same command with --resume '${partialFile}' to continue`,
    {
      kept: partialFile,
      batches: partial.info.batches,
      items: partial.info.items,
      totalItems: interruption.items,
      resume: command,
    },
  );
}

export function registerStats(program: Command, run: Run): void {
  withData(withCommon(program.command('stats').argument('<model>', 'TorchScript model file')), 'train', true)
    .description('gather activation statistics of every MLP block on calibration data')
    .option('--covariance', "also gather each block's covariance (for --compensation lsq)")
    .option('--snip', "also SNIP's scores from the labels of --data (for --criterion snip)")
    .option(
      '--covariance-product <type>',
      'float64 (default) or float32 (faster without sampling; about 2e-7 of the largest entry off)',
    )
    .option(
      '--covariance-sampling <share>',
      'share of the tokens the covariance uses, in (0, 1], or auto (default: all up to 1,024 neurons per block, else 0.25)',
    )
    .option(
      '--shard <I/N>',
      'calibrate on shard I of N (items I, I+N, I+2N... of the data set); merge the N files with vbp merge',
    )
    .option('--devices <list>', 'replicas on several devices at once, e.g. cuda:0,cuda:1 (or cpu,cpu), merged exactly')
    .option('--out <file>', 'statistics file to write (safetensors)')
    .option(
      '--resume <file>',
      'continue an interrupted run from the partial statistics it kept (OUT.partial.safetensors; same model, data and options)',
    )
    .option('--force', 'replace an existing output file (and the partial statistics of an interrupted run)')
    .action((model: string, options: StatsCommandOptions) => run(options, () => stats(model, options)));
}
