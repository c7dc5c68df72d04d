/** What every command shares: the common options, loading the model, and the data and calibration options. */
import { Command, Option } from 'commander';
import { batches, shuffledOrder, type Dataset } from '../data/dataset';
import { selectionOf, shardOf } from '../data/shard';
import { distributedInfo, rankDevice } from '../distributed/group';
import { VbpError } from '../errors';
import type { ModelCard } from '../formats/model-card';
import { setNumThreads } from '../native/runtime';
import { loadModel, type Model } from '../model/model';
import { CalibrationError } from '../statistics/collector';
import { gatherStats } from '../statistics/gather';
import type { CovarianceOptions } from '../statistics/options';
import type { Stats } from '../statistics/stats';
import { parseDevice, parseInteger, parseShape, parseThreads, readingInput, usageError } from './args';
import { warn } from './output';
import { meteredDataset, type DataMeter } from '../data/meter';
import { Progress, progressWanted } from './progress';

/**
 * The options of every command (withCommon; merge has --json and --quiet only). Each command's options extend
 * them; values are what commander gives: text for options with a value (parsed by args.ts), booleans for flags.
 */
export interface GlobalOptions {
  device?: string;
  threads?: string;
  json?: boolean;
  quiet?: boolean;
}

/** Runs a command's work with the global options applied (main.ts); `options` are the command's own. */
export type Run = (options: GlobalOptions, job: () => Promise<void>) => Promise<void>;

/** withData's batch options and, for calibration, shuffling. */
export interface CalibrationOptions {
  limit?: string;
  batchSize?: string;
  seed?: string;
  shuffle?: boolean;
  skipBadImages?: boolean;
}

/** Items used for calibration when --limit is not given (the paper's results change little above 1k images). */
const DEFAULT_CALIBRATION_ITEMS = 2048;

export function withCommon(command: Command): Command {
  return command
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--threads <n>', "LibTorch and OpenBLAS intra-op threads (default: LibTorch's)")
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'print nothing but errors');
}

/**
 * --data and how to read it; `calibration` adds shuffling (stats, prune) to the options every data command has.
 * `batchSize` and `limitHelp` are for commands whose batches and limit mean something else (finetune).
 */
export function withData(
  command: Command,
  defaultSplit: 'train' | 'test',
  calibration: boolean,
  own: { batchSize?: string; limitHelp?: string } = {},
): Command {
  command
    .option(
      '--data <source>',
      "'fashion-mnist', a folder of IDX files, an .npy file, an ImageFolder tree or WebDataset tar shards ('train-{000000..000127}.tar')",
    )
    .option('--split <split>', `IDX data: train or test (default: ${defaultSplit})`)
    .option('--labels <file.npy>', '.npy data: class indices, one per item')
    .option('--input-shape <C,H,W>', '.npy data: shape of one item (default: from the model card)')
    .option('--mean <list>', 'per-channel mean after scaling pixels to [0, 1] (default: from the model card)')
    .option('--std <list>', 'per-channel std (default: from the model card)')
    .option(
      '--raw',
      'no normalisation (when the model has no card and the data needs none, e.g. already normalised .npy data)',
    )
    .option(
      '--scale <s>',
      '.npy data: divide item values by s before normalising, e.g. 255 for float pixels in 0..255 (default: 255 for uint8, 1 for float items)',
    )
    .option('--crop <px>', "image folders: center crop size (default: the model card's, else 224)")
    .option('--resize <px>', 'image folders: shorter side before cropping (default: crop / 0.875)')
    .option('--interpolation <kind>', 'image folders: bicubic (default), bilinear or nearest')
    .option('--decode-threads <n>', 'image folders and tar shards: images decoded at once (default: two per core)')
    .option('--channels <n>', "image folders: 3 (RGB) or 1 (grey) (default: the model card's, else 3)")
    .option(
      '--class-map <file.json>',
      'image folders: JSON object from folder name to the model card\'s class name (or class index), e.g. {"T-shirt_top": "T-shirt/top"}',
    )
    .option('--skip-bad-images', 'skip images that cannot be decoded (counted and reported) instead of stopping')
    .option('--batch-size <n>', 'items per batch', own.batchSize ?? '64');
  if (calibration) {
    command
      .addOption(new Option('--limit <n>', 'calibration items').default(String(DEFAULT_CALIBRATION_ITEMS)))
      .option('--seed <n>', 'seed of the shuffle (and of the random criterion)', '0')
      .option('--no-shuffle', 'take the first items in data set order');
  } else {
    command.option('--limit <n>', own.limitHelp ?? 'use the first n items only');
  }
  return command;
}

/** Applies --threads and --device checks (tensor blocks are cached by the addon itself: no allocator settings). */
export function applyGlobalOptions(options: GlobalOptions): void {
  if (options.device !== undefined) parseDevice(options.device);
  if (options.threads !== undefined) setNumThreads(parseThreads(options.threads, '--threads', (m) => warn(options, m)));
}

/** Loads a model named on the command line: one that is missing or cannot be loaded is bad usage (exit 2). */
export async function openModel(file: string, options: GlobalOptions, option?: string): Promise<Model> {
  // A rank of a data-parallel run asked for 'cuda' takes cuda:LOCAL_RANK.
  return readingInput(option, () => loadModel(file, { device: rankDevice(options.device ?? 'cpu') }));
}

export function progressFor(options: GlobalOptions): Progress {
  // In a data-parallel run rank 0 alone shows progress (the ranks step together).
  return new Progress(progressWanted(options) && (distributedInfo()?.rank ?? 0) === 0);
}

/** Images skipped with --skip-bad-images: the count and the first few reasons. */
export class SkipLog {
  count = 0;
  readonly first: string[] = [];

  readonly record = (_index: number, error: Error): void => {
    this.count++;
    if (this.first.length < 5) this.first.push(error.message);
  };

  describe(): string {
    return this.count === 0 ? '' : `skipped ${this.count} unreadable item(s), e.g. ${this.first[0]}`;
  }
}

/** The calibration options, checked (before any work). */
export function calibrationSettings(
  options: CalibrationOptions,
  dataset: Dataset,
): { limit: number; batchSize: number; seed: number; shuffle: boolean } {
  const limit = Math.min(parseInteger(options.limit ?? String(DEFAULT_CALIBRATION_ITEMS), '--limit', 1), dataset.size);
  return {
    limit,
    batchSize: parseInteger(options.batchSize ?? '64', '--batch-size', 1),
    seed: parseInteger(options.seed ?? '0', '--seed'),
    shuffle: options.shuffle !== false,
  };
}

/** Rank `rank` of `world`'s part of a calibration's items: positions rank, rank + world, ... of its selection. */
function rankPart(
  dataset: Dataset,
  settings: { limit: number; seed: number; shuffle: boolean },
  rank: number,
  world: number,
): Dataset {
  const order = settings.shuffle
    ? shuffledOrder(dataset.size, settings.seed)
    : Int32Array.from({ length: dataset.size }, (_, i) => i);
  const selection = selectionOf(dataset, order.subarray(0, settings.limit), dataset.description);
  return shardOf(selection, rank, world);
}

/** The progress bar's note of how fast the data path itself goes (see data/meter.ts). */
export function dataRate(meter: DataMeter): string {
  return `data ${meter.imagesPerSecond().toFixed(0)} img/s`;
}

/** Statistics of `model` on `dataset`, with a progress bar; `covariance` as least-squares compensation needs it. */
export async function calibrate(
  model: Model,
  dataset: Dataset,
  options: GlobalOptions & CalibrationOptions,
  skipped: SkipLog,
  covariance: CovarianceOptions & { devices?: string[]; resume?: Stats; signal?: AbortSignal; snip?: boolean } = {},
): Promise<Stats> {
  const settings = calibrationSettings(options, dataset);
  // Data-parallel (vbp launch): the items one process would take (shuffled with the seed, the first `limit`),
  // rank r calibrating on every W-th of them; gatherStats merges the ranks' statistics into those of all of them.
  const group = distributedInfo();
  const part = group ? rankPart(dataset, settings, group.rank, group.worldSize) : dataset;
  const meter = meteredDataset(part);
  const items = meter.dataset;
  const batchSettings = group ? { batchSize: settings.batchSize, limit: items.size, shuffle: false } : settings;
  const progress = progressFor(options);
  progress.start('calibrating', group ? items.size : settings.limit, true);
  if (covariance.resume) progress.update(covariance.resume.info.items, dataRate(meter));
  try {
    return await withShapeHint(dataset, () =>
      gatherStats(
        model,
        batches(items, { ...batchSettings, skipBadItems: Boolean(options.skipBadImages), onSkip: skipped.record }),
        {
          ...covariance,
          onProgress: (p) => progress.update(p.items, dataRate(meter)),
        },
      ),
    );
  } finally {
    progress.stop();
  }
}

/** The item shape for shape-only work (inspect, bench): --input-shape, checked against the card, else the card's. */
export function itemShapeOf(options: { inputShape?: string }, card: ModelCard | undefined): number[] | undefined {
  if (options.inputShape === undefined) return card?.inputShape;
  const shape = parseShape(options.inputShape, '--input-shape');
  if (card?.inputShape && card.inputShape.length !== shape.length) {
    throw usageError(
      '--input-shape',
      `[${shape}] has ${shape.length} sizes; the model card says items are [${card.inputShape}]`,
    );
  }
  return shape;
}

/** Adds to an INPUT_SHAPE failure of work on a probe input which --input-shape or card gave the shape. */
export async function withItemShapeHint<T>(shape: number[], fromOption: boolean, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof VbpError) || error.code !== 'INPUT_SHAPE') throw error;
    const source = fromOption ? '--input-shape' : "the model card's inputShape";
    throw new VbpError(error.code, `${error.message} (items of shape [${shape}] from ${source} do not fit the model)`, {
      cause: error,
      detail: error.detail,
    });
  }
}

/** Adds to an INPUT_SHAPE failure of the model what the data gave and how to change it. */
export async function withShapeHint<T>(dataset: Dataset, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof VbpError) || error.code !== 'INPUT_SHAPE') throw error;
    const hint =
      `the data gives items of shape [${dataset.itemShape}]; if the model expects another size, pass --crop N (image folders) ` +
      'or --input-shape C,H,W (.npy files), or give the model a card with its inputShape';
    const rebuilt = new VbpError(error.code, `${error.message} (${hint})`, { cause: error, detail: error.detail });
    throw error instanceof CalibrationError ? new CalibrationError(rebuilt, error.partial) : rebuilt;
  }
}
