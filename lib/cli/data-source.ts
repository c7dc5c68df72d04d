/**
 * --data and its options: which data set, preprocessed how. Normalisation comes from --mean/--std, else
 * from the model card; without either the command refuses (--raw opts out), because a guessed
 * normalisation gives plausible-looking but wrong numbers. Everything is checked against the model's card
 * (channels, item shape) before any work.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Dataset } from '../data/dataset';
import { VbpError } from '../errors';
import { IdxDataset, DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES, isIdxFolder } from '../data/idx-dataset';
import { ImageFolderDataset, type ImageFolderOptions } from '../data/image-folder';
import { TarShardDataset } from '../data/tar-shards';
import { checkNormalisation, type Normalisation } from '../data/normalisation';
import { NpyDataset, ValueRangeError, fitItemShape } from '../data/npy-dataset';
import type { ModelCard } from '../formats/model-card';
import { readNpyShape } from '../formats/npy';
import {
  UsageError,
  checkingOption,
  parseChoice,
  parseInteger,
  parseNumber,
  parseNumberList,
  parseShape,
  usageError,
} from './args';

export interface DataOptions {
  data?: string;
  split?: string;
  labels?: string;
  mean?: string;
  std?: string;
  raw?: boolean;
  crop?: string;
  resize?: string;
  interpolation?: string;
  decodeThreads?: string;
  channels?: string;
  inputShape?: string;
  scale?: string;
  classMap?: string;
}

interface DataSource {
  dataset: Dataset;
  /** Where the normalisation came from. */
  normalisation: 'options' | 'model card' | 'none (--raw)';
}

type Kind = 'idx' | 'npy' | 'images' | 'shards';

const IMAGE_ONLY = ['crop', 'resize', 'interpolation', 'channels', 'decodeThreads'] as const;

/** Options that only mean something with --data (commands with other sources refuse them). */
export const DATA_OPTIONS = [
  'split',
  'labels',
  'inputShape',
  'scale',
  'mean',
  'std',
  'raw',
  ...IMAGE_ONLY,
  'classMap',
  'skipBadImages',
  'limit',
  'batchSize',
  'shuffle',
] as const;

function dataKind(spec: string): { kind: Kind; location: string } {
  // WebDataset shards: a brace pattern or a .tar file (the dataset checks that each shard exists).
  if (spec.includes('{') || spec.toLowerCase().endsWith('.tar')) return { kind: 'shards', location: spec };
  const location = spec === 'fashion-mnist' ? DEBIAN_FASHION_MNIST : spec;
  const stat = fs.statSync(location, { throwIfNoEntry: false });
  if (!stat) {
    if (spec === 'fashion-mnist')
      throw usageError(
        '--data',
        `Fashion-MNIST is not installed at ${location}: apt-get install dataset-fashion-mnist (or pass --data DIR)`,
        'IO',
      );
    throw usageError('--data', `'${spec}' does not exist`, 'IO');
  }
  if (stat.isFile()) {
    if (location.toLowerCase().endsWith('.npy')) return { kind: 'npy', location };
    throw usageError(
      '--data',
      `'${spec}' is a file of a type torch-vbp does not read (${path.extname(spec) || 'no extension'}); give an .npy file, a folder of IDX files, an ImageFolder tree or 'fashion-mnist'`,
      'DATA',
    );
  }
  return { kind: isIdxFolder(location) ? 'idx' : 'images', location };
}

function checkOnlyFor(options: DataOptions, kind: Kind): void {
  if (options.labels !== undefined && kind !== 'npy')
    throw usageError('--labels', 'is for .npy data only (IDX and image folders carry their labels)');
  if (options.split !== undefined && kind !== 'idx')
    throw usageError('--split', 'is for IDX data (fashion-mnist or a folder of IDX files) only');
  if (options.inputShape !== undefined && kind !== 'npy')
    throw usageError('--input-shape', 'is for .npy data only (IDX and image items have their own shape)');
  if (options.scale !== undefined && kind !== 'npy')
    throw usageError('--scale', 'is for .npy data only (IDX and image pixels are bytes, scaled to [0, 1])');
  if (options.classMap !== undefined && kind !== 'images')
    throw usageError(
      '--class-map',
      'is for image folders only (their folder names are the classes; tar shards carry class indices)',
    );
  for (const key of IMAGE_ONLY) {
    if (options[key] !== undefined && kind !== 'images' && kind !== 'shards')
      throw usageError(
        `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
        'is for image folders and tar shards only',
      );
  }
}

/** --mean/--std, else the card's, else none with --raw; refuses to guess. */
function normalisationOf(
  options: DataOptions,
  card: ModelCard | undefined,
  channels: number,
  model: string,
  kind: Kind,
): { value?: Normalisation; from: DataSource['normalisation'] } {
  if ((options.mean === undefined) !== (options.std === undefined))
    throw usageError(options.mean === undefined ? '--mean' : '--std', 'is missing: give --mean and --std together');
  if (options.raw && options.mean !== undefined) throw usageError('--raw', 'cannot be combined with --mean/--std');
  const check = (n: Normalisation, option: string, hint = ''): Normalisation => {
    try {
      checkNormalisation(n, channels, 'normalisation');
    } catch (error) {
      throw usageError(option, (error as Error).message.replace(/^normalisation: /, '') + hint);
    }
    return n;
  };
  if (options.mean !== undefined) {
    const mean = parseNumberList(options.mean, '--mean');
    const std = parseNumberList(options.std!, '--std');
    check({ mean, std: mean.map(() => 1) }, '--mean');
    check({ mean: std.map(() => 0), std }, '--std');
    return { value: { mean, std }, from: 'options' };
  }
  if (options.raw) return { from: 'none (--raw)' };
  if (card?.mean && card.std) {
    const cardChannels = Math.max(card.mean.length, card.std.length);
    const hint = ` (the model card is for ${cardChannels}-channel items: ${kind === 'images' || kind === 'shards' ? `pass --channels ${cardChannels}, or ` : ''}pass --mean/--std for ${channels}-channel items)`;
    return { value: check({ mean: card.mean, std: card.std }, "the model card's mean/std", hint), from: 'model card' };
  }
  throw new UsageError(
    'INVALID_ARGUMENT',
    `${model} has no model card with the input normalisation, so the data cannot be normalised the way the model was trained: ` +
      'pass --mean M --std S (per channel, after scaling pixels to [0, 1]), or --raw to feed the data unnormalised (e.g. an .npy file that is already normalised)',
  );
}

/** --class-map FILE.json: { "folder": "class name" | class index, ... }. */
function readClassMap(file: string): Record<string, string | number> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw usageError(
      '--class-map',
      `cannot read '${file}': ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
      'IO',
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw usageError('--class-map', `'${file}' is not JSON: ${(error as Error).message}`, 'DATA');
  }
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    !Object.values(value).every((v) => typeof v === 'string' || typeof v === 'number')
  ) {
    throw usageError(
      '--class-map',
      `'${file}' must hold one JSON object from folder name to class name or class index, e.g. {"T-shirt_top": "T-shirt/top"}`,
      'DATA',
    );
  }
  return value as Record<string, string | number>;
}

function checkItemShape(dataset: Dataset, card: ModelCard | undefined, kind: Kind): void {
  const expected = card?.inputShape;
  if (!expected || expected.join() === dataset.itemShape.join()) return;
  const hint =
    kind === 'images' || kind === 'shards'
      ? `; pass --crop ${expected[expected.length - 1]} (and --channels ${expected[0]})`
      : '';
  throw usageError(
    '--data',
    `items of ${dataset.description} have shape [${dataset.itemShape}], the model expects [${expected}] (model card)${hint}`,
    'DATA',
  );
}

/** Opens --data for a model with `card`; `needsLabels` for evaluation. Failures name the option (exit code 2). */
export function openDataset(
  options: DataOptions,
  card: ModelCard | undefined,
  model: string,
  defaultSplit: 'train' | 'test',
  needsLabels = false,
): DataSource {
  return checkingOption('--data', () => open(options, card, model, defaultSplit, needsLabels));
}

function open(
  options: DataOptions,
  card: ModelCard | undefined,
  model: string,
  defaultSplit: 'train' | 'test',
  needsLabels: boolean,
): DataSource {
  if (!options.data)
    throw usageError(
      '--data',
      "is required: 'fashion-mnist', a folder of IDX files, an .npy file, an image folder or tar shards",
    );
  const { kind, location } = dataKind(options.data);
  checkOnlyFor(options, kind);
  const itemShape =
    options.inputShape !== undefined ? parseShape(options.inputShape, '--input-shape') : card?.inputShape;
  let dataset: Dataset;
  let from: DataSource['normalisation'];
  if (kind === 'idx') {
    const split = parseChoice(options.split ?? defaultSplit, '--split', ['train', 'test'] as const);
    const normalisation = normalisationOf(options, card, 1, model, kind);
    from = normalisation.from;
    const classes =
      options.data === 'fashion-mnist' || /fashion/i.test(location) ? FASHION_MNIST_CLASSES : card?.classes;
    dataset = IdxDataset.split(location, split, { normalise: normalisation.value, classes });
  } else if (kind === 'npy') {
    if (needsLabels && options.labels === undefined)
      throw usageError('--labels', 'is required to evaluate .npy data (an .npy file of class indices, one per item)');
    if (options.labels !== undefined && !fs.statSync(options.labels, { throwIfNoEntry: false })?.isFile())
      throw usageError('--labels', `'${options.labels}' does not exist or is not a file`, 'IO');
    // The channels come from the item shape, checked against the file's header: the file itself is read once.
    const fileShape = readNpyShape(location);
    const shape = itemShape
      ? checkingOption(options.inputShape !== undefined ? '--input-shape' : '--data', () =>
          fitItemShape(itemShape, fileShape, location),
        )
      : fileShape.slice(1);
    const normalisation = normalisationOf(options, card, shape.length >= 3 ? shape[0] : 1, model, kind);
    from = normalisation.from;
    const scale = options.scale !== undefined ? parseNumber(options.scale, '--scale', 0, Infinity, true) : undefined;
    dataset = checkingOption(options.labels !== undefined ? '--labels' : '--data', () => {
      try {
        return new NpyDataset(location, options.labels, { itemShape, normalise: normalisation.value, scale });
      } catch (error) {
        if (!(error instanceof ValueRangeError)) throw error;
        const hint = {
          pixels: 'pass --scale 255',
          normalised: 'pass --raw (no normalisation)',
          asIs: 'pass --scale 1',
        };
        throw usageError(
          '--data',
          new ValueRangeError(options.data!, error.dtype, error.min, error.max, error.normalisation, hint).message,
          'DATA',
        );
      }
    });
  } else {
    const channels =
      options.channels !== undefined
        ? Number(parseChoice(options.channels, '--channels', ['1', '3'] as const))
        : (card?.inputShape?.[0] ?? 3);
    if (channels !== 1 && channels !== 3)
      throw usageError('--channels', `the model card says ${channels} channels; image folders give 1 or 3`);
    const normalisation = normalisationOf(options, card, channels, model, kind);
    from = normalisation.from;
    const preprocessing: ImageFolderOptions = {
      classes: card?.classes,
      mean: normalisation.value?.mean ?? [0],
      std: normalisation.value?.std ?? [1],
      crop:
        options.crop !== undefined
          ? parseInteger(options.crop, '--crop', 1)
          : card?.inputShape?.[card.inputShape.length - 1],
      resize: options.resize !== undefined ? parseInteger(options.resize, '--resize', 1) : undefined,
      interpolation:
        options.interpolation !== undefined
          ? parseChoice(options.interpolation, '--interpolation', ['bicubic', 'bilinear', 'nearest'] as const)
          : undefined,
      channels: channels as 1 | 3,
    };
    if (preprocessing.resize !== undefined && preprocessing.resize < (preprocessing.crop ?? 224)) {
      throw usageError(
        '--resize',
        `must be at least the crop size (${preprocessing.crop ?? 224}), got ${preprocessing.resize}`,
      );
    }
    const threads =
      options.decodeThreads !== undefined
        ? parseInteger(options.decodeThreads, '--decode-threads', 1, 1024)
        : undefined;
    if (kind === 'shards') dataset = new TarShardDataset(location, { ...preprocessing, threads });
    else {
      const classMap = options.classMap !== undefined ? readClassMap(options.classMap) : undefined;
      try {
        dataset = new ImageFolderDataset(location, { ...preprocessing, threads, ...(classMap ? { classMap } : {}) });
      } catch (error) {
        // The library's advice, in the command line's words.
        if (error instanceof VbpError && /with classMap, e\.g\./.test(error.message)) {
          throw usageError(
            '--data',
            error.message.replace('with classMap, e.g.', 'with --class-map FILE.json holding e.g.'),
            error.code,
          );
        }
        if (error instanceof VbpError && error.message.startsWith('classMap: '))
          throw usageError('--class-map', error.message.slice('classMap: '.length), error.code);
        throw error;
      }
    }
  }
  // An explicit --input-shape was checked against the file above; otherwise the card's must fit the data.
  if (options.inputShape === undefined) checkItemShape(dataset, card, kind);
  return { dataset, normalisation: from };
}
