/**
 * Items from an .npy file [N, ...item shape] with optional labels from another .npy file [N]. uint8 items
 * are pixels and scaled to [0, 1]; float items are taken as they are (or divided by `scale`). Normalisation,
 * when given, is then applied per channel (dimension 1 of the file), as for IDX and image data; it expects
 * values in [0, 1], so float items outside that range are refused unless `scale` says what they are.
 */
import path from 'node:path';
import { VbpError } from '../errors';
import { readNpy } from '../formats/npy';
import type { Tensor } from '../tensor';
import type { Dataset } from './dataset';
import { checkNormalisation, normaliseInto, type Normalisation } from './normalisation';

export interface NpyDatasetOptions {
  /**
   * Per-channel mean and std for values scaled to [0, 1]. Float items outside [0, 1] are then refused
   * (DATA): 0..255 pixels need `scale: 255`, already normalised items no `normalise`.
   */
  normalise?: Normalisation;
  /**
   * Items are divided by this before normalising (default 255 for uint8 items, 1 for float items). Giving
   * it says the values are what they are: the range check is skipped.
   */
  scale?: number;
  /** Shape of one item the model expects, e.g. [1, 28, 28]; a file of [N, 28, 28] is then read as [N, 1, 28, 28]. */
  itemShape?: number[];
}

const ITEM_TYPES = ['float32', 'float64', 'uint8'];
/** How far outside [0, 1] float items may lie before normalisation refuses them (rounding, resampling overshoot). */
const RANGE_TOLERANCE = 0.05;

/**
 * Float items outside [0, 1] with a normalisation that expects [0, 1]: what was found, for a message that fits the
 * caller.
 */
export class ValueRangeError extends VbpError {
  constructor(
    readonly file: string,
    readonly dtype: string,
    readonly min: number,
    readonly max: number,
    readonly normalisation: Normalisation,
    /** How to say the fix: the library's options by default, the CLI's flags for vbp. */
    fixes: { pixels: string; normalised: string; asIs: string } = {
      pixels: 'give scale: 255',
      normalised: 'give no normalisation',
      asIs: 'give scale: 1',
    },
  ) {
    super(
      'DATA',
      `${ValueRangeError.found(file, dtype, min, max, normalisation)}: ${ValueRangeError.advice(min, max, fixes)}`,
    );
    this.name = 'ValueRangeError';
  }

  static found(file: string, dtype: string, min: number, max: number, n: Normalisation): string {
    const f = (x: number): string => String(Number(x.toPrecision(4)));
    return `'${file}' holds ${dtype} values from ${f(min)} to ${f(max)}, but the normalisation (mean [${n.mean}], std [${n.std}]) expects pixels scaled to [0, 1]`;
  }

  static advice(min: number, max: number, fixes: { pixels: string; normalised: string; asIs: string }): string {
    if (min >= -RANGE_TOLERANCE && max <= 255 + RANGE_TOLERANCE)
      return `if they are pixels in 0..255, ${fixes.pixels}; to take them as they are, ${fixes.asIs}`;
    if (min < -RANGE_TOLERANCE && max <= 255)
      return `if they are already normalised, ${fixes.normalised}; to take them as they are, ${fixes.asIs}`;
    return `give the value that stands for a white pixel (${fixes.pixels.replace(/255/, 'S')}), or ${fixes.normalised} if they are already normalised`;
  }
}

function rangeOf(values: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/**
 * The item shape a model expects, if the file's items [N, ...] fit it: the same shape, or [N, H, W] for a
 * model taking [1, H, W] (the missing channel dimension is added; nothing else is guessed). DATA otherwise.
 */
export function fitItemShape(expected: number[], fileShape: number[], file: string): number[] {
  const fileItemShape = fileShape.slice(1);
  const missingChannel =
    expected.length === fileItemShape.length + 1 &&
    expected[0] === 1 &&
    expected.slice(1).join() === fileItemShape.join();
  if (expected.join() !== fileItemShape.join() && !missingChannel) {
    throw new VbpError(
      'DATA',
      `'${file}' holds items of shape [${fileItemShape}]; the model expects [${expected}] (file shape [${fileShape}])`,
    );
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
  private readonly scale: number;

  constructor(itemsFile: string, labelsFile?: string, options: NpyDatasetOptions = {}) {
    this.items = readNpy(itemsFile);
    const [count, ...fileItemShape] = this.items.shape;
    if (this.items.shape.length < 2)
      throw new VbpError('DATA', `'${itemsFile}' has shape [${this.items.shape}]; expected [N, ...] items`);
    if (!ITEM_TYPES.includes(this.items.dtype ?? '')) {
      throw new VbpError('DATA', `'${itemsFile}' holds ${this.items.dtype}; expected float32, float64 or uint8 items`);
    }
    this.itemShape = options.itemShape ? fitItemShape(options.itemShape, this.items.shape, itemsFile) : fileItemShape;
    if (labelsFile) {
      this.labels = readNpy(labelsFile);
      if (this.labels.shape.length !== 1 || this.labels.shape[0] !== count) {
        throw new VbpError(
          'DATA',
          `'${labelsFile}' has shape [${this.labels.shape}] for ${count} items; expected [${count}]`,
        );
      }
      if (!LABEL_TYPES.includes(this.labels.dtype ?? ''))
        throw new VbpError('DATA', `'${labelsFile}' holds ${this.labels.dtype}; expected integer class indices`);
    }
    const channels = this.itemShape.length >= 3 ? this.itemShape[0] : 1;
    this.normalisation = options.normalise ? checkNormalisation(options.normalise, channels) : undefined;
    if (
      options.scale !== undefined &&
      !(typeof options.scale === 'number' && Number.isFinite(options.scale) && options.scale > 0)
    ) {
      throw new VbpError('INVALID_ARGUMENT', `scale must be a positive number, got ${String(options.scale)}`);
    }
    this.scale = options.scale ?? (this.items.dtype === 'uint8' ? 255 : 1);
    // A normalisation expects [0, 1]: float values far outside it are 0..255 pixels or normalised data, which
    // would give plausible-looking but wrong results.
    if (options.normalise && options.scale === undefined && this.items.dtype !== 'uint8') {
      const { min, max } = rangeOf(this.items.data as ArrayLike<number>);
      if (min < -RANGE_TOLERANCE || max > 1 + RANGE_TOLERANCE) {
        throw new ValueRangeError(itemsFile, this.items.dtype ?? 'float', min, max, options.normalise);
      }
    }
    this.size = count;
    this.description = `${path.basename(itemsFile)} (${this.size} items [${this.itemShape}])`;
  }

  get labelled(): boolean {
    return this.labels !== undefined;
  }

  async read(index: number, target: Float32Array): Promise<number> {
    const n = target.length;
    const channels = this.itemShape.length >= 3 ? this.itemShape[0] : 1;
    normaliseInto(
      target,
      this.items.data.subarray(index * n, (index + 1) * n) as ArrayLike<number>,
      channels,
      1 / this.scale,
      this.normalisation,
    );
    return this.labels ? Number(this.labels.data[index]) : -1;
  }
}
