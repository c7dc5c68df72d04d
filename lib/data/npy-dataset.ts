/**
 * Items from an .npy file [N, ...item shape] with optional labels from another .npy file [N]. uint8 items
 * are pixels and scaled to [0, 1]; float items are taken as they are. Normalisation, when given, is then
 * applied per channel (dimension 1 of the file), as for IDX and image data.
 */
import path from 'node:path';
import { VbpError } from '../errors';
import { readNpy } from '../formats/npy';
import type { Tensor } from '../tensor';
import type { Dataset } from './dataset';
import { checkNormalisation, normaliseInto, type Normalisation } from './normalisation';

export interface NpyDatasetOptions {
  normalise?: Normalisation;
  /** Shape of one item the model expects, e.g. [1, 28, 28]; a file of [N, 28, 28] is then read as [N, 1, 28, 28]. */
  itemShape?: number[];
}

const ITEM_TYPES = ['float32', 'float64', 'uint8'];

/**
 * The item shape a model expects, if the file's items [N, ...] fit it: the same shape, or [N, H, W] for a
 * model taking [1, H, W] (the missing channel dimension is added; nothing else is guessed). DATA otherwise.
 */
export function fitItemShape(expected: number[], fileShape: number[], file: string): number[] {
  const fileItemShape = fileShape.slice(1);
  const missingChannel = expected.length === fileItemShape.length + 1 && expected[0] === 1 && expected.slice(1).join() === fileItemShape.join();
  if (expected.join() !== fileItemShape.join() && !missingChannel) {
    throw new VbpError('DATA', `'${file}' holds items of shape [${fileItemShape}]; the model expects [${expected}] (file shape [${fileShape}])`);
  }
  return [...expected];
}
const LABEL_TYPES = ['int64', 'int32', 'int16', 'int8', 'uint8'];

export class NpyDataset implements Dataset {
  readonly size: number;
  readonly itemShape: number[];
  readonly description: string;
  private readonly items: Tensor;
  private readonly labels?: Tensor;
  private readonly normalisation?: { mean: Float64Array; std: Float64Array };

  constructor(itemsFile: string, labelsFile?: string, options: NpyDatasetOptions = {}) {
    this.items = readNpy(itemsFile);
    const [count, ...fileItemShape] = this.items.shape;
    if (this.items.shape.length < 2) throw new VbpError('DATA', `'${itemsFile}' has shape [${this.items.shape}]; expected [N, ...] items`);
    if (!ITEM_TYPES.includes(this.items.dtype ?? '')) {
      throw new VbpError('DATA', `'${itemsFile}' holds ${this.items.dtype}; expected float32, float64 or uint8 items`);
    }
    this.itemShape = options.itemShape ? fitItemShape(options.itemShape, this.items.shape, itemsFile) : fileItemShape;
    if (labelsFile) {
      this.labels = readNpy(labelsFile);
      if (this.labels.shape.length !== 1 || this.labels.shape[0] !== count) {
        throw new VbpError('DATA', `'${labelsFile}' has shape [${this.labels.shape}] for ${count} items; expected [${count}]`);
      }
      if (!LABEL_TYPES.includes(this.labels.dtype ?? '')) throw new VbpError('DATA', `'${labelsFile}' holds ${this.labels.dtype}; expected integer class indices`);
    }
    const channels = this.itemShape.length >= 3 ? this.itemShape[0] : 1;
    this.normalisation = options.normalise ? checkNormalisation(options.normalise, channels) : undefined;
    this.size = count;
    this.description = `${path.basename(itemsFile)} (${this.size} items [${this.itemShape}])`;
  }

  get labelled(): boolean {
    return this.labels !== undefined;
  }

  async read(index: number, target: Float32Array): Promise<number> {
    const n = target.length;
    const channels = this.itemShape.length >= 3 ? this.itemShape[0] : 1;
    const scale = this.items.dtype === 'uint8' ? 1 / 255 : 1;
    normaliseInto(target, this.items.data.subarray(index * n, (index + 1) * n) as ArrayLike<number>, channels, scale, this.normalisation);
    return this.labels ? Number(this.labels.data[index]) : -1;
  }
}
