/** A data set from .npy files: items [N, ...] (float32, or uint8 scaled to [0, 1]) and optional labels [N]. */
import path from 'node:path';
import { VbpError } from '../errors';
import type { Dataset } from './dataset';
import { readNpy } from './npy';
import type { Tensor } from '../tensor';

export class NpyDataset implements Dataset {
  readonly size: number;
  readonly itemShape: number[];
  readonly description: string;
  private readonly items: Tensor;
  private readonly labels?: Tensor;

  constructor(itemsFile: string, labelsFile?: string) {
    this.items = readNpy(itemsFile);
    if (this.items.shape.length < 2) throw new VbpError('DATA', `'${itemsFile}' has shape [${this.items.shape}]; expected [N, ...] items`);
    if (!['float32', 'float64', 'uint8'].includes(this.items.dtype ?? '')) {
      throw new VbpError('DATA', `'${itemsFile}' holds ${this.items.dtype}; expected float32, float64 or uint8 items`);
    }
    if (labelsFile) {
      this.labels = readNpy(labelsFile);
      if (this.labels.shape.length !== 1 || this.labels.shape[0] !== this.items.shape[0]) {
        throw new VbpError('DATA', `'${labelsFile}' has shape [${this.labels.shape}] for ${this.items.shape[0]} items`);
      }
    }
    this.size = this.items.shape[0];
    this.itemShape = this.items.shape.slice(1);
    this.description = `${path.basename(itemsFile)} (${this.size} items [${this.itemShape}])`;
  }

  async read(index: number, target: Float32Array): Promise<number> {
    const n = target.length;
    const source = this.items.data.subarray(index * n, (index + 1) * n);
    const scale = this.items.dtype === 'uint8' ? 1 / 255 : 1;
    for (let i = 0; i < n; i++) target[i] = Number(source[i]) * scale;
    return this.labels ? Number(this.labels.data[index]) : -1;
  }
}
