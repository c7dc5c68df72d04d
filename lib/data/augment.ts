/**
 * The training augmentation of DeiT-style fine-tuning: torchvision's RandomResizedCrop (scale (0.08, 1), ratio
 * (3/4, 4/3)) then RandomHorizontalFlip (p 0.5). Every item's draws come from a generator seeded by the run's seed,
 * the epoch and the item's index, never by its place in a batch: a resumed run and any number of ranks crop every
 * item of an epoch the same way.
 */
import { VbpError } from '../errors';
import { seededRandom } from '../util/random';

export const TRAIN_TRANSFORMS = ['none', 'crop-flip'] as const;
export type TrainTransform = (typeof TRAIN_TRANSFORMS)[number];

/** torchvision's RandomResizedCrop defaults. */
export const CROP_SCALE: readonly [number, number] = [0.08, 1];
export const CROP_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/** A crop of an image, in pixels (torchvision's i, j, h, w). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** What one item's augmentation does: the crop of the source image, then a horizontal flip or not. */
export interface ItemAugmentation {
  box: CropBox;
  flip: boolean;
}

/** Python's round(): half to even. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * RandomResizedCrop.get_params's rule, drawing from `uniform` (values in [0, 1)) in torchvision's order: per attempt
 * the area share, then the log aspect ratio; for an accepted box its top, then its left offset (torch.randint's
 * uniform integers); after 10 rejected attempts the central crop of the ratio range's nearest aspect.
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  uniform: () => number,
  scale: readonly [number, number] = CROP_SCALE,
  ratio: readonly [number, number] = CROP_RATIO,
): CropBox {
  const area = width * height;
  const [logLow, logHigh] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * uniform());
    const aspect = Math.exp(logLow + (logHigh - logLow) * uniform());
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = Math.floor(uniform() * (height - h + 1));
      const left = Math.floor(uniform() * (width - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let [w, h] = [width, height];
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** The generator of item `index` in the epoch whose augmentation seed is `seed`. */
export function itemRandom(seed: number, index: number): () => number {
  // Two rounds of the generator mix seed and index, so that neighbouring items do not share draws.
  const mix = seededRandom((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  return seededRandom(((mix() * 2 ** 32) ^ index) >>> 0);
}

/** Item `index`'s crop of a `width` x `height` image and its flip, drawn as torchvision draws them. */
export function drawAugmentation(width: number, height: number, random: () => number): ItemAugmentation {
  const box = randomResizedCropBox(width, height, random);
  return { box, flip: random() < 0.5 };
}

/**
 * PIL's separable resampling weights (Resample.c's precompute_coeffs) for `inSize` source pixels to `outSize`, with
 * the filter widened by the downscaling factor (antialiasing), as torchvision's resize of a PIL image uses them.
 */
function resampleWeights(inSize: number, outSize: number): { first: Int32Array; weights: Float64Array[] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale; // the bilinear (triangle) filter's support is 1
  const first = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const low = Math.max(Math.trunc(center - support + 0.5), 0);
    const high = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w = new Float64Array(high - low);
    let total = 0;
    for (let x = low; x < high; x++) {
      const t = Math.abs((x - center + 0.5) / filterScale);
      w[x - low] = t < 1 ? 1 - t : 0;
      total += w[x - low];
    }
    if (total !== 0) for (let k = 0; k < w.length; k++) w[k] /= total;
    first[o] = low;
    weights.push(w);
  }
  return { first, weights };
}

/**
 * torchvision's resized_crop (bilinear, antialiased as PIL's) of `box` of a [channels, height, width] float image, then
 * the flip, into `target` ([channels, outHeight, outWidth]). On already-normalised items it equals cropping the
 * pixels first: the weights sum to 1, so a per-channel affine normalisation commutes with them.
 */
export function resizedCropInto(
  source: Float32Array,
  shape: readonly [number, number, number],
  augmentation: ItemAugmentation,
  outHeight: number,
  outWidth: number,
  target: Float32Array,
): void {
  const [channels, height, width] = shape;
  const { box, flip } = augmentation;
  if (box.top < 0 || box.left < 0 || box.top + box.height > height || box.left + box.width > width)
    throw new VbpError(
      'INVALID_ARGUMENT',
      `crop box ${JSON.stringify(box)} lies outside the ${width} x ${height} image`,
    );
  const horizontal = resampleWeights(box.width, outWidth);
  const vertical = resampleWeights(box.height, outHeight);
  // Horizontal pass over the box's rows, then the vertical pass, as PIL does them.
  const rows = new Float64Array(box.height * outWidth);
  for (let c = 0; c < channels; c++) {
    const plane = c * height * width;
    for (let y = 0; y < box.height; y++) {
      const row = plane + (box.top + y) * width + box.left;
      for (let o = 0; o < outWidth; o++) {
        const w = horizontal.weights[o];
        const start = row + horizontal.first[o];
        let sum = 0;
        for (let k = 0; k < w.length; k++) sum += w[k] * source[start + k];
        rows[y * outWidth + o] = sum;
      }
    }
    const out = c * outHeight * outWidth;
    for (let o = 0; o < outHeight; o++) {
      const w = vertical.weights[o];
      const start = vertical.first[o];
      for (let x = 0; x < outWidth; x++) {
        let sum = 0;
        for (let k = 0; k < w.length; k++) sum += w[k] * rows[(start + k) * outWidth + x];
        target[out + o * outWidth + (flip ? outWidth - 1 - x : x)] = sum;
      }
    }
  }
}

export function checkTrainTransform(value: unknown, where: string): TrainTransform {
  if (!TRAIN_TRANSFORMS.includes(value as TrainTransform))
    throw new VbpError(
      'INVALID_ARGUMENT',
      `${where}: trainTransform must be one of ${TRAIN_TRANSFORMS.join(', ')}, got ${JSON.stringify(value)}`,
    );
  return value as TrainTransform;
}
