/**
 * IDX files (the MNIST / Fashion-MNIST format), gzipped or not: a magic number giving the element type and
 * rank, big-endian sizes, then the data.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { VbpError } from '../errors';
import type { Dataset } from './dataset';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export function parseIdx(bytes: Buffer, file = '<buffer>'): IdxArray {
  const fail = (why: string): never => {
    throw new VbpError('DATA', `'${file}' is not a readable IDX file: ${why}`);
  };
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (error) {
      return fail(`gzip data is corrupt (${(error as Error).message})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) fail('bad magic number');
  if (bytes[2] !== 0x08) fail(`element type 0x${bytes[2].toString(16)} is not supported (only unsigned bytes, 0x08)`);
  const rank = bytes[3];
  if (rank < 1 || bytes.length < 4 + 4 * rank) fail('header is truncated');
  const shape = Array.from({ length: rank }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * rank;
  if (bytes.length - offset !== count) fail(`shape [${shape.join(', ')}] needs ${count} bytes of data, the file has ${bytes.length - offset}`);
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + offset, count) };
}

export function readIdx(file: string): IdxArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new VbpError('DATA', `cannot read '${file}': ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  return parseIdx(bytes, file);
}

export interface Normalisation {
  mean: number[];
  std: number[];
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

function findFile(dir: string, stem: string): string {
  for (const name of [`${stem}.gz`, stem]) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  throw new VbpError('DATA', `'${dir}' has no ${stem}(.gz); expected MNIST-style IDX files (Debian: apt-get install dataset-fashion-mnist)`);
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
  private readonly normalise?: Normalisation;

  constructor(imagesFile: string, labelsFile: string | undefined, options: { normalise?: Normalisation; classes?: string[] } = {}) {
    this.images = readIdx(imagesFile);
    if (this.images.shape.length !== 3) {
      throw new VbpError('DATA', `'${imagesFile}' holds an array of shape [${this.images.shape}], expected images [N, H, W]`);
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
    this.normalise = options.normalise;
    this.classes = options.classes;
    this.description = `${path.basename(imagesFile)} (${this.size} images ${this.images.shape[1]}x${this.images.shape[2]})`;
  }

  /** The train or test split of an MNIST-style folder (train-images-idx3-ubyte(.gz), t10k-...). */
  static split(dir: string, split: 'train' | 'test', options: { normalise?: Normalisation; classes?: string[] } = {}): IdxDataset {
    const prefix = split === 'train' ? 'train' : 't10k';
    return new IdxDataset(findFile(dir, `${prefix}-images-idx3-ubyte`), findFile(dir, `${prefix}-labels-idx1-ubyte`), options);
  }

  async read(index: number, target: Float32Array): Promise<number> {
    const pixels = this.itemShape[1] * this.itemShape[2];
    const mean = this.normalise?.mean[0] ?? 0;
    const std = this.normalise?.std[0] ?? 1;
    const source = this.images.data.subarray(index * pixels, (index + 1) * pixels);
    for (let i = 0; i < pixels; i++) target[i] = (source[i] / 255 - mean) / std;
    return this.labels ? this.labels[index] : -1;
  }
}
