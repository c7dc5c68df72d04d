/** What the CLI commands share: option parsing, data sources, progress bars, output files, errors. */
import fs from 'node:fs';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { VbpError } from '../errors';
import { IdxDataset, DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES } from '../data/idx';
import { NpyDataset } from '../data/npy-dataset';
import { ImageFolderDataset, type ImagePreprocessing } from '../data/image-folder';
import type { Dataset } from '../data/dataset';
import { readModelCard, type ModelCard } from '../model-card';
import { keepLargeAllocations, setNumThreads } from '../device';

export interface GlobalOptions {
  device?: string;
  threads?: string;
  json?: boolean;
  quiet?: boolean;
  force?: boolean;
}

export function applyGlobalOptions(options: GlobalOptions): void {
  if (options.threads !== undefined) setNumThreads(parseInteger(options.threads, '--threads', 1));
  // Steady forward times: keep activation-sized blocks allocated between forwards (see keepLargeAllocations).
  keepLargeAllocations();
}

export function parseInteger(value: string, flag: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new VbpError('INVALID_ARGUMENT', `${flag} must be an integer >= ${min}, got '${value}'`);
  return n;
}

export function parseFraction(value: string, flag: string): number {
  const n = Number(value.endsWith('%') ? Number(value.slice(0, -1)) / 100 : value);
  if (!Number.isFinite(n)) throw new VbpError('INVALID_ARGUMENT', `${flag} must be a number such as 0.5 or 50%, got '${value}'`);
  return n;
}

export function parseNumberList(value: string, flag: string): number[] {
  const items = value.split(',').map((v) => Number(v.trim()));
  if (items.length === 0 || items.some((v) => !Number.isFinite(v))) {
    throw new VbpError('INVALID_ARGUMENT', `${flag} must be comma-separated numbers, got '${value}'`);
  }
  return items;
}

export function existingFile(file: string, what: string): string {
  if (!fs.existsSync(file)) throw new VbpError(what === 'model' ? 'MODEL_NOT_FOUND' : 'IO', `${what} file '${file}' does not exist`);
  if (fs.statSync(file).isDirectory()) throw new VbpError('IO', `${what} '${file}' is a folder, not a file`);
  return file;
}

/**
 * Checks an output path before any work: it must not be an input, and must not exist unless --force.
 * Returns the overwrite flag for the atomic writers.
 */
export function checkOutput(out: string | undefined, inputs: string[], force: boolean | undefined, flag = '--out'): string {
  if (!out) throw new VbpError('INVALID_ARGUMENT', `${flag} FILE is required`);
  const resolved = path.resolve(out);
  if (inputs.some((input) => path.resolve(input) === resolved)) {
    throw new VbpError('OUTPUT_EXISTS', `${flag} '${out}' is an input of this command; refusing to overwrite it`);
  }
  if (fs.existsSync(resolved) && !force) throw new VbpError('OUTPUT_EXISTS', `'${out}' already exists; pass --force to replace it`);
  if (!fs.existsSync(path.dirname(resolved))) throw new VbpError('IO', `cannot write '${out}': folder '${path.dirname(resolved)}' does not exist`);
  return resolved;
}

export interface DataOptions {
  data?: string;
  split?: string;
  labels?: string;
  mean?: string;
  std?: string;
  crop?: string;
  resize?: string;
  interpolation?: string;
  channels?: string;
}

/**
 * --data is 'fashion-mnist' (Debian's dataset-fashion-mnist), a folder of MNIST-style IDX files, an .npy
 * file of items (with --labels), or a folder in ImageFolder layout. Normalisation comes from --mean/--std,
 * else from the model card.
 */
export function openDataset(options: DataOptions, card: ModelCard | undefined, defaultSplit: 'train' | 'test'): Dataset {
  const spec = options.data;
  if (!spec) throw new VbpError('INVALID_ARGUMENT', '--data is required (fashion-mnist, an IDX folder, an .npy file or an image folder)');
  const mean = options.mean ? parseNumberList(options.mean, '--mean') : card?.mean;
  const std = options.std ? parseNumberList(options.std, '--std') : card?.std;
  const split = (options.split ?? defaultSplit) as 'train' | 'test';
  if (split !== 'train' && split !== 'test') throw new VbpError('INVALID_ARGUMENT', `--split must be train or test, got '${String(options.split)}'`);
  const dir = spec === 'fashion-mnist' ? DEBIAN_FASHION_MNIST : spec;
  if (spec === 'fashion-mnist' && !fs.existsSync(dir)) {
    throw new VbpError('DATA', `Fashion-MNIST is not installed at ${dir}: apt-get install dataset-fashion-mnist (or pass --data DIR)`);
  }
  if (!fs.existsSync(dir)) throw new VbpError('DATA', `data '${spec}' does not exist`);
  if (dir.toLowerCase().endsWith('.npy')) return new NpyDataset(dir, options.labels);
  const isIdx = fs.statSync(dir).isDirectory() && fs.readdirSync(dir).some((f) => /idx\d-ubyte(\.gz)?$/.test(f));
  if (isIdx) {
    const normalise = mean && std ? { mean, std } : undefined;
    const classes = spec === 'fashion-mnist' || /fashion/i.test(dir) ? FASHION_MNIST_CLASSES : card?.classes;
    return IdxDataset.split(dir, split, { normalise, classes });
  }
  const preprocessing: ImagePreprocessing = {
    mean,
    std,
    crop: options.crop ? parseInteger(options.crop, '--crop', 1) : card?.inputShape?.[1],
    resize: options.resize ? parseInteger(options.resize, '--resize', 1) : undefined,
    interpolation: options.interpolation as ImagePreprocessing['interpolation'],
    channels: (options.channels ? parseInteger(options.channels, '--channels', 1) : card?.inputShape?.[0]) as 1 | 3 | undefined,
  };
  return new ImageFolderDataset(dir, preprocessing);
}

export function cardFor(modelPath: string): ModelCard | undefined {
  return readModelCard(modelPath);
}

/** A progress bar on stderr when it is a terminal and output is for people; silent otherwise. */
export class Progress {
  private bar?: SingleBar;

  constructor(private readonly enabled: boolean) {}

  start(label: string, total: number): void {
    if (!this.enabled) return;
    this.stop();
    this.bar = new SingleBar(
      { format: `${label.padEnd(28)} {bar} {percentage}% | {value}/{total} | {eta_formatted} left`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
      Presets.shades_classic,
    );
    this.bar.start(total, 0);
  }

  update(value: number): void {
    this.bar?.update(value);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

export function progressFor(options: GlobalOptions): Progress {
  return new Progress(!options.json && !options.quiet && Boolean(process.stderr.isTTY));
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function percent(x: number, digits = 2): string {
  return `${(x * 100).toFixed(digits)}`;
}

/** A plain-text table with right-aligned numeric columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
