/** Grey images and labels from MNIST-style IDX files (Fashion-MNIST from Debian's dataset-fashion-mnist). */
import fs from 'node:fs';
import path from 'node:path';
import { VbpError } from '../errors';
import { readIdx, type IdxArray } from '../formats/idx';
import type { Dataset } from './dataset';
import { checkNormalisation, normaliseInto, type Normalisation } from './normalisation';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
export const DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

export interface IdxDatasetOptions {
  /** Applied after scaling pixels to [0, 1]; none when undefined. */
  normalise?: Normalisation;
  classes?: string[];
}

function findFile(dir: string, stem: string): string {
  for (const name of [`${stem}.gz`, stem]) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  throw new VbpError(
    'DATA',
    `'${dir}' has no ${stem}(.gz); expected MNIST-style IDX files (Debian: apt-get install dataset-fashion-mnist)`,
  );
}

/** Whether `dir` is a folder holding IDX files. */
export function isIdxFolder(dir: string): boolean {
  return (
    fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true &&
    fs.readdirSync(dir).some((f) => /idx\d-ubyte(\.gz)?$/.test(f))
  );
}

/**
 * Grey images [N, H, W] (bytes) and labels from IDX files, as float items [1, H, W] scaled to [0, 1] and
 * normalised with `normalise` (default: none).
 */
export class IdxDataset implements Dataset {
  readonly size: number;
  readonly itemShape: number[];
  readonly description: string;
  readonly classes?: string[];
  private readonly images: IdxArray;
  private readonly labels?: Uint8Array;
  private readonly normalisation?: { mean: Float64Array; std: Float64Array };

  constructor(imagesFile: string, labelsFile: string | undefined, options: IdxDatasetOptions = {}) {
    this.images = readIdx(imagesFile);
    if (this.images.shape.length !== 3) {
      throw new VbpError(
        'DATA',
        `'${imagesFile}' holds an array of shape [${this.images.shape}], expected images [N, H, W]`,
      );
    }
    if (labelsFile) {
      const labels = readIdx(labelsFile);
      if (labels.shape.length !== 1 || labels.shape[0] !== this.images.shape[0]) {
        throw new VbpError('DATA', `'${labelsFile}' has ${labels.shape} labels for ${this.images.shape[0]} images`);
      }
      this.labels = labels.data;
    }
    this.size = this.images.shape[0];
    this.itemShape = [1, this.images.shape[1], this.images.shape[2]];
    this.normalisation = options.normalise ? checkNormalisation(options.normalise, 1) : undefined;
    this.classes = options.classes;
    this.description = `${path.basename(imagesFile)} (${this.size} images ${this.images.shape[1]}x${this.images.shape[2]})`;
  }

  /** The train or test split of an MNIST-style folder (train-images-idx3-ubyte(.gz), t10k-...). */
  static split(dir: string, split: 'train' | 'test', options: IdxDatasetOptions = {}): IdxDataset {
    const prefix = split === 'train' ? 'train' : 't10k';
    return new IdxDataset(
      findFile(dir, `${prefix}-images-idx3-ubyte`),
      findFile(dir, `${prefix}-labels-idx1-ubyte`),
      options,
    );
  }

  get labelled(): boolean {
    return this.labels !== undefined;
  }

  async read(index: number, target: Float32Array): Promise<number> {
    const pixels = this.itemShape[1] * this.itemShape[2];
    normaliseInto(
      target,
      this.images.data.subarray(index * pixels, (index + 1) * pixels),
      1,
      1 / 255,
      this.normalisation,
    );
    return this.labels ? this.labels[index] : -1;
  }
}
