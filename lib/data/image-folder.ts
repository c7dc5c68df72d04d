/**
 * Images in ImageFolder layout (root/<class>/<image>), decoded with sharp and preprocessed like timm's
 * DeiT evaluation transform: resize the shorter side to crop / cropPct (bicubic), center-crop, scale to
 * [0, 1], normalise per channel. Every step is configurable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VbpError } from '../errors';
import type { Dataset } from './dataset';

export interface ImagePreprocessing {
  /** Side of the square center crop (default 224). */
  crop?: number;
  /** Shorter side after resizing (default round(crop / 0.875), i.e. 256 for 224: timm's crop_pct). */
  resize?: number;
  interpolation?: 'bicubic' | 'bilinear' | 'nearest';
  /** Per-channel mean and std after scaling to [0, 1] (default ImageNet's). */
  mean?: number[];
  std?: number[];
  /** 3 for RGB (default) or 1 for grey. */
  channels?: 1 | 3;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
const EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif']);

type Sharp = typeof import('sharp');
let sharpModule: Sharp | undefined;
function sharp(): Sharp {
  if (!sharpModule) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      sharpModule = require('sharp') as Sharp;
    } catch (error) {
      throw new VbpError('DATA', `image folders need the 'sharp' package, which failed to load: ${(error as Error).message}`);
    }
  }
  return sharpModule;
}

/** Python's round(): ties to even, as torchvision's CenterCrop computes its offsets. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Decodes and preprocesses one image file into `target` ([channels, crop, crop], channel-major). */
export async function preprocessImage(file: string, options: ImagePreprocessing, target: Float32Array): Promise<void> {
  const crop = options.crop ?? 224;
  const resize = options.resize ?? Math.round(crop / 0.875);
  const channels = options.channels ?? 3;
  const mean = options.mean ?? (channels === 3 ? IMAGENET_MEAN : [0.5]);
  const std = options.std ?? (channels === 3 ? IMAGENET_STD : [0.5]);
  const kernel = { bicubic: 'cubic', bilinear: 'linear', nearest: 'nearest' }[options.interpolation ?? 'bicubic'] as 'cubic' | 'linear' | 'nearest';
  let image = sharp()(file, { failOn: 'error' }).rotate(); // honour EXIF orientation, like PIL's exif_transpose would
  let metadata;
  try {
    metadata = await image.metadata();
  } catch (error) {
    throw new VbpError('DATA', `cannot decode image '${file}': ${(error as Error).message}`);
  }
  let width = metadata.width ?? 0;
  let height = metadata.height ?? 0;
  if ((metadata.orientation ?? 1) >= 5) [width, height] = [height, width];
  if (!width || !height) throw new VbpError('DATA', `cannot read the size of image '${file}'`);
  // torchvision Resize(int): the shorter side becomes `resize`, the other keeps the aspect ratio (floored).
  const [w, h] = width <= height ? [resize, Math.floor((resize * height) / width)] : [Math.floor((resize * width) / height), resize];
  if (w < crop || h < crop) throw new VbpError('DATA', `resize ${resize} is smaller than crop ${crop}`);
  const left = roundHalfEven((w - crop) / 2);
  const top = roundHalfEven((h - crop) / 2);
  image = image.removeAlpha().resize(w, h, { kernel, fit: 'fill' }).extract({ left, top, width: crop, height: crop });
  image = channels === 1 ? image.grayscale() : image.toColourspace('srgb');
  let pixels: Buffer;
  try {
    pixels = await image.raw().toBuffer();
  } catch (error) {
    throw new VbpError('DATA', `cannot decode image '${file}': ${(error as Error).message}`);
  }
  const plane = crop * crop;
  const stride = pixels.length / plane;
  for (let c = 0; c < channels; c++) {
    const m = mean[c] ?? mean[0];
    const s = std[c] ?? std[0];
    for (let i = 0; i < plane; i++) target[c * plane + i] = (pixels[i * stride + c] / 255 - m) / s;
  }
}

export class ImageFolderDataset implements Dataset {
  readonly size: number;
  readonly itemShape: number[];
  readonly classes: string[];
  readonly description: string;
  readonly files: Array<{ file: string; label: number }>;
  private readonly options: ImagePreprocessing;

  constructor(root: string, options: ImagePreprocessing = {}) {
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new VbpError('DATA', `image folder '${root}' does not exist`);
    this.classes = fs
      .readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    this.files = this.classes.flatMap((name, label) =>
      fs
        .readdirSync(path.join(root, name))
        .filter((f) => EXTENSIONS.has(path.extname(f).toLowerCase()))
        .sort()
        .map((f) => ({ file: path.join(root, name, f), label })),
    );
    if (this.files.length === 0) {
      throw new VbpError('DATA', `'${root}' holds no images in ImageFolder layout (root/<class>/<image>.jpg|png|webp)`);
    }
    this.options = options;
    const crop = options.crop ?? 224;
    this.size = this.files.length;
    this.itemShape = [options.channels ?? 3, crop, crop];
    this.description = `${root} (${this.size} images, ${this.classes.length} classes)`;
  }

  async read(index: number, target: Float32Array): Promise<number> {
    const { file, label } = this.files[index];
    await preprocessImage(file, this.options, target);
    return label;
  }
}
