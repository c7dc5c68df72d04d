/**
 * Images in ImageFolder layout (root/<class>/<image>), decoded with sharp and preprocessed like timm's
 * DeiT evaluation transform: resize the shorter side to crop / cropPct (bicubic), center-crop, scale to
 * [0, 1], normalise per channel. Every step is configurable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VbpError } from '../errors';
import { drawAugmentation } from './augment';
import type { Dataset } from './dataset';
import { checkNormalisation } from './normalisation';
import { native } from '../native/addon';

export interface ImagePreprocessing {
  /** Side of the square center crop (default 224). */
  crop?: number;
  /** Shorter side after resizing (default round(crop / 0.875), i.e. 256 for 224: timm's crop_pct). */
  resize?: number;
  interpolation?: (typeof INTERPOLATIONS)[number];
  /** Per-channel mean and std after scaling to [0, 1] (default ImageNet's). */
  mean?: number[];
  std?: number[];
  /** 3 for RGB (default) or 1 for grey. */
  channels?: 1 | 3;
  /**
   * 'auto' (default): RGB JPEGs with bicubic or bilinear resizing go through the native core, which reproduces
   * torchvision's PIL path exactly (libjpeg-turbo as Pillow, Pillow's resampling), the rest through sharp;
   * 'sharp': every image through sharp.
   */
  decoder?: 'auto' | 'sharp';
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
const INTERPOLATIONS = ['bicubic', 'bilinear', 'nearest'] as const;

type Sharp = typeof import('sharp');
let sharpModule: Sharp | undefined;
function sharp(): Sharp {
  if (!sharpModule) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      sharpModule = require('sharp') as Sharp;
    } catch (error) {
      throw new VbpError(
        'DATA',
        `image folders need the 'sharp' package, which failed to load: ${(error as Error).message}`,
      );
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

/** Whether the native core takes `input` (a JPEG by its name or first bytes) with these options. */
function nativeTakes(input: ImageSource, options: ImagePreprocessing): boolean {
  if ((options.decoder ?? 'auto') === 'sharp' || (options.channels ?? 3) !== 3) return false;
  if ((options.interpolation ?? 'bicubic') === 'nearest') return false;
  if (typeof input === 'string') return /\.jpe?g$/i.test(input);
  if ('member' in input) return /\.jpe?g$/i.test(input.member);
  const bytes = input.bytes;
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/**
 * The evaluation transform in the native core, exactly torchvision's PIL path: true when it wrote the item; false
 * when this file is not one it reproduces (CMYK, an EXIF rotation, no libjpeg in the build), for sharp to decode.
 */
async function nativeEvalTransform(
  source: ImageSource,
  options: ImagePreprocessing,
  target: Float32Array,
  name: string,
): Promise<boolean> {
  if (!nativeTakes(source, options)) return false;
  const input =
    typeof source === 'string'
      ? source
      : 'member' in source
        ? { file: source.file, offset: source.offset, length: source.length }
        : source.bytes;
  const crop = options.crop ?? 224;
  // One value per channel, as the sharp path reads them (one value stands for all three).
  const { mean, std } = checkNormalisation(
    { mean: options.mean ?? IMAGENET_MEAN, std: options.std ?? IMAGENET_STD },
    3,
    'image normalisation',
  );
  try {
    const declined = await native().evalTransformJpeg(
      input,
      {
        resize: options.resize ?? Math.round(crop / 0.875),
        crop,
        filter: options.interpolation === 'bilinear' ? 'bilinear' : 'bicubic',
        mean: Array.from(mean),
        std: Array.from(std),
      },
      target,
    );
    return declined === null;
  } catch (error) {
    const coded = error as VbpError;
    if (coded.code === 'DATA' || coded.code === 'IO')
      throw new VbpError(coded.code, `cannot decode image '${name}': ${coded.message}`);
    throw error;
  }
}

/** An image file's bytes, read from elsewhere, and the name errors give it. */
export interface EncodedImage {
  bytes: Buffer;
  name: string;
}

/** An image stored inside another file (a member of a tar shard): where its bytes are, and the name errors give it. */
export interface ImageInFile {
  file: string;
  offset: number;
  length: number;
  member: string;
  name: string;
}

export type ImageSource = string | EncodedImage | ImageInFile;

async function bytesOf(part: ImageInFile): Promise<Buffer> {
  const bytes = Buffer.alloc(part.length);
  const handle = await fs.promises.open(part.file, 'r').catch((error: Error) => {
    throw new VbpError('IO', `cannot open '${part.file}': ${error.message}`);
  });
  try {
    const { bytesRead } = await handle.read(bytes, 0, part.length, part.offset);
    if (bytesRead !== part.length) throw new VbpError('DATA', `'${part.file}' ended inside '${part.member}'`);
  } finally {
    await handle.close();
  }
  return bytes;
}

/**
 * Decodes and preprocesses one image file into `target` ([channels, crop, crop], channel-major). With `random`, the
 * training augmentation instead of the resize and center crop: torchvision's RandomResizedCrop of the decoded image
 * to crop x crop (with the configured interpolation), then RandomHorizontalFlip, both drawn from `random`.
 */
export async function preprocessImage(
  source: ImageSource,
  options: ImagePreprocessing,
  target: Float32Array,
  random?: () => number,
): Promise<void> {
  checkPreprocessing(options);
  const file = typeof source === 'string' ? source : source.name;
  if (!random && (await nativeEvalTransform(source, options, target, file))) return;
  const input = typeof source === 'string' ? source : 'member' in source ? await bytesOf(source) : source.bytes;
  const crop = options.crop ?? 224;
  const resize = options.resize ?? Math.round(crop / 0.875);
  const channels = options.channels ?? 3;
  const mean = options.mean ?? (channels === 3 ? IMAGENET_MEAN : [0.5]);
  const std = options.std ?? (channels === 3 ? IMAGENET_STD : [0.5]);
  const kernel = { bicubic: 'cubic', bilinear: 'linear', nearest: 'nearest' }[options.interpolation ?? 'bicubic'] as
    'cubic' | 'linear' | 'nearest';
  // sequentialRead: the image is decoded top to bottom once, which is all this pipeline needs.
  let image = sharp()(input, { failOn: 'error', sequentialRead: true }).rotate(); // honour EXIF orientation, like PIL's exif_transpose would
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
  let flip = false;
  if (random) {
    const augmentation = drawAugmentation(width, height, random);
    flip = augmentation.flip;
    const { left, top, width: boxWidth, height: boxHeight } = augmentation.box;
    // extract() before resize(): the crop of the (EXIF-oriented) decoded image, then resized to the output.
    image = image
      .removeAlpha()
      .extract({ left, top, width: boxWidth, height: boxHeight })
      .resize(crop, crop, { kernel, fit: 'fill' });
  } else {
    // torchvision Resize(int): the shorter side becomes `resize`, the other keeps the aspect ratio (floored).
    const [w, h] =
      width <= height
        ? [resize, Math.floor((resize * height) / width)]
        : [Math.floor((resize * width) / height), resize];
    if (w < crop || h < crop) throw new VbpError('DATA', `resize ${resize} is smaller than crop ${crop}`);
    const left = roundHalfEven((w - crop) / 2);
    const top = roundHalfEven((h - crop) / 2);
    image = image.removeAlpha().resize(w, h, { kernel, fit: 'fill' }).extract({ left, top, width: crop, height: crop });
  }
  image = channels === 1 ? image.grayscale() : image.toColourspace('srgb');
  let pixels: Buffer;
  try {
    pixels = await image.raw().toBuffer();
  } catch (error) {
    throw new VbpError('DATA', `cannot decode image '${file}': ${(error as Error).message}`);
  }
  const plane = crop * crop;
  const stride = pixels.length / plane;
  const normalisation = checkNormalisation({ mean, std }, channels, 'image normalisation');
  for (let c = 0; c < channels; c++) {
    const m = normalisation.mean[c];
    const s = normalisation.std[c];
    if (!flip) for (let i = 0; i < plane; i++) target[c * plane + i] = (pixels[i * stride + c] / 255 - m) / s;
    else
      for (let y = 0; y < crop; y++)
        for (let x = 0; x < crop; x++)
          target[c * plane + y * crop + (crop - 1 - x)] = (pixels[(y * crop + x) * stride + c] / 255 - m) / s;
  }
}

/** torchvision's IMG_EXTENSIONS: the files its ImageFolder lists (compared in lower case). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

/** Python's string order (by code point), which torchvision's sorted() uses. */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function isFolder(file: string): boolean {
  // follows symlinks, like os.scandir().is_dir()
  return fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() === true;
}

/**
 * The files of one class folder as torchvision lists them: os.walk(followlinks=True) sorted by folder,
 * file names sorted within each folder, kept when the extension is an image extension. Symlinked folders
 * are followed once (a link back to a folder above would loop).
 */
function walkClass(root: string): string[] {
  const folders: string[] = [];
  const seen = new Set<string>();
  const visit = (dir: string): void => {
    const real = fs.realpathSync(dir);
    if (seen.has(real)) return;
    seen.add(real);
    folders.push(dir);
    for (const entry of fs.readdirSync(dir)) if (isFolder(path.join(dir, entry))) visit(path.join(dir, entry));
  };
  visit(root);
  return folders.sort(byCodePoint).flatMap((dir) =>
    fs
      .readdirSync(dir)
      .filter(
        (name) => !isFolder(path.join(dir, name)) && IMAGE_EXTENSIONS.some((ext) => name.toLowerCase().endsWith(ext)),
      )
      .sort(byCodePoint)
      .map((name) => path.join(dir, name)),
  );
}

/** Throws INVALID_ARGUMENT for preprocessing options outside what preprocessImage() supports. */
export function checkPreprocessing(options: ImagePreprocessing): void {
  const fail = (why: string): never => {
    throw new VbpError('INVALID_ARGUMENT', why);
  };
  if (options.decoder !== undefined && options.decoder !== 'auto' && options.decoder !== 'sharp')
    fail(`decoder must be auto or sharp, got '${String(options.decoder)}'`);
  if (options.interpolation !== undefined && !INTERPOLATIONS.includes(options.interpolation)) {
    fail(`interpolation must be one of ${INTERPOLATIONS.join(', ')}, got '${String(options.interpolation)}'`);
  }
  if (options.channels !== undefined && options.channels !== 1 && options.channels !== 3)
    fail(`channels must be 1 or 3, got ${String(options.channels)}`);
  for (const key of ['crop', 'resize'] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value < 1))
      fail(`${key} must be a positive integer, got ${String(value)}`);
  }
  const crop = options.crop ?? 224;
  if (options.resize !== undefined && options.resize < crop)
    fail(`resize (${options.resize}) must be at least the crop (${crop})`);
  if (options.mean || options.std)
    checkNormalisation(
      { mean: options.mean ?? [0], std: options.std ?? [1] },
      options.channels ?? 3,
      'image normalisation',
    );
}

/**
 * Decodes at once by default: two per core (each on a thread of libuv's pool), so that a core does not wait while
 * the main thread hands out the next image (measured here: 553 images/s at 4 on 2 cores, 449 at 2).
 */
export function defaultDecodeThreads(): number {
  return 2 * (os.availableParallelism?.() ?? os.cpus().length);
}

/** Throws INVALID_ARGUMENT unless `threads` is a positive integer (or undefined). */
export function checkDecodeThreads(threads: number | undefined): void {
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1))
    throw new VbpError('INVALID_ARGUMENT', `threads must be a positive integer, got ${String(threads)}`);
}

export interface ImageFolderOptions extends ImagePreprocessing {
  /**
   * Images decoded at once (default: two per core), each on a thread of libuv's pool, which has 4 threads unless
   * UV_THREADPOOL_SIZE says otherwise before the process's first asynchronous call (`vbp` sets it to 2 x cores + 2).
   */
  threads?: number;
  /**
   * The model's class order (e.g. a model card's `classes`): a folder's label is the index of its class
   * here, and a folder that matches no class is refused. A folder matches the class of its name, else the
   * class whose sanitised name equals the folder's (lower case, every run of characters other than letters
   * and digits one '_': folder 'T-shirt_top' or 't-shirt top' is class 'T-shirt/top', which no folder can
   * be called), unless two classes sanitise alike. Default: torchvision's, the sorted folder names.
   */
  classes?: string[];
  /**
   * Folder name -> class name (one of `classes`) or class index, for folders named otherwise; it comes
   * before the name matching above. Entries for folders that do not exist are ignored.
   */
  classMap?: Record<string, string | number>;
}

/** A class or folder name compared loosely: lower case, runs of anything but letters and digits as one '_'. */
function sanitisedClassName(name: string): string {
  return name
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '_')
    .replace(/^_+|_+$/g, '');
}

/** The label of every folder: by classMap, by name, by sanitised name; DATA naming the folders that match nothing. */
function labelsOfFolders(
  root: string,
  folders: string[],
  classes: string[] | undefined,
  classMap: Record<string, string | number> | undefined,
): number[] {
  if (classMap !== undefined && (typeof classMap !== 'object' || classMap === null || Array.isArray(classMap))) {
    throw new VbpError('INVALID_ARGUMENT', 'classMap must be an object from folder name to class name or class index');
  }
  const fromMap = (folder: string): number | undefined => {
    if (!classMap || !Object.prototype.hasOwnProperty.call(classMap, folder)) return undefined;
    const target = classMap[folder];
    if (typeof target === 'number') {
      if (!Number.isInteger(target) || target < 0 || (classes && target >= classes.length)) {
        throw new VbpError(
          'DATA',
          `classMap: folder '${folder}' maps to class index ${target}, ${classes ? `outside 0..${classes.length - 1} (${classes.length} classes)` : 'which must be an integer >= 0'}`,
        );
      }
      return target;
    }
    if (typeof target !== 'string')
      throw new VbpError(
        'DATA',
        `classMap: folder '${folder}' maps to ${JSON.stringify(target)}; give a class name or a class index`,
      );
    const index = classes?.indexOf(target) ?? -1;
    if (index < 0) {
      throw new VbpError(
        'DATA',
        classes
          ? `classMap: folder '${folder}' maps to '${target}', which is not among the model's classes (${classes.join(', ')})`
          : `classMap: folder '${folder}' maps to the class name '${target}', but no class list was given (map to class indices instead)`,
      );
    }
    return index;
  };
  if (!classes) {
    // torchvision's order, with folders the map places elsewhere.
    return folders.map((folder, i) => fromMap(folder) ?? i);
  }
  const sanitised = new Map<string, number[]>();
  classes.forEach((name, i) =>
    sanitised.set(sanitisedClassName(name), [...(sanitised.get(sanitisedClassName(name)) ?? []), i]),
  );
  const unknown: string[] = [];
  const labels = folders.map((folder) => {
    const mapped = fromMap(folder);
    if (mapped !== undefined) return mapped;
    const exact = classes.indexOf(folder);
    if (exact >= 0) return exact;
    const loose = sanitised.get(sanitisedClassName(folder)) ?? [];
    if (loose.length === 1) return loose[0];
    unknown.push(folder);
    return -1;
  });
  if (unknown.length > 0) {
    const example = classes.find((c) => sanitisedClassName(c) !== c && /[^\p{L}\p{N} _-]/u.test(c));
    throw new VbpError(
      'DATA',
      `'${root}': class folder(s) ${unknown.map((c) => `'${c}'`).join(', ')} match none of the model's classes (${classes.map((c) => `'${c}'`).join(', ')}): ` +
        `name each folder as its class${example ? ` (a class such as '${example}' matches a folder '${sanitisedClassName(example)}': case, '/', spaces and punctuation are not compared)` : ' (case and punctuation are not compared)'}, ` +
        `or map the folders to classes with classMap, e.g. {"${unknown[0]}": "${classes[0]}"}`,
    );
  }
  return labels;
}

/** Without a class list: each index named by the folders mapped to it ('' for an index no folder has). */
function classNamesOf(folders: string[], labels: number[]): string[] {
  const names: string[] = new Array<string>(Math.max(...labels) + 1).fill('');
  labels.forEach((label, i) => (names[label] = names[label] ? `${names[label]}+${folders[i]}` : folders[i]));
  return names;
}

/**
 * Images in ImageFolder layout (root/<class>/.../<image>), with torchvision's class discovery (every
 * folder, symlinks followed, sorted) and file walk (subfolders included), so labels match torchvision's.
 */
export class ImageFolderDataset implements Dataset {
  readonly size: number;
  readonly itemShape: number[];
  readonly classes: string[];
  readonly description: string;
  readonly labelled = true;
  /**
   * Images batches() decodes at once (options.threads), a sliding window that also reads into the next batch (the
   * benchmark row 'ImageFolder decode + resize 256 + crop 224 + normalise' in README, "Benchmarks", measures it).
   */
  readonly concurrency: number;
  readonly files: Array<{ file: string; label: number }>;
  private readonly options: ImagePreprocessing;

  constructor(root: string, options: ImageFolderOptions = {}) {
    if (!isFolder(root)) throw new VbpError('IO', `image folder '${root}' does not exist or is not a folder`);
    const { classes: labelOrder, classMap, threads, ...preprocessing } = options;
    checkPreprocessing(preprocessing);
    checkDecodeThreads(threads);
    this.concurrency = threads ?? defaultDecodeThreads();
    const folders = fs
      .readdirSync(root)
      .filter((name) => isFolder(path.join(root, name)))
      .sort(byCodePoint);
    if (folders.length === 0)
      throw new VbpError('DATA', `'${root}' has no class folders; expected ImageFolder layout root/<class>/<image>`);
    const perClass = folders.map((name) => walkClass(path.join(root, name)));
    const empty = folders.filter((_, i) => perClass[i].length === 0);
    if (empty.length > 0) {
      throw new VbpError(
        'DATA',
        `'${root}': no image in class folder(s) ${empty.map((c) => `'${c}'`).join(', ')} (extensions: ${IMAGE_EXTENSIONS.join(' ')})`,
      );
    }
    const labels = labelsOfFolders(root, folders, labelOrder, classMap);
    this.classes = labelOrder ? [...labelOrder] : classMap ? classNamesOf(folders, labels) : folders;
    this.files = perClass.flatMap((files, i) => files.map((file) => ({ file, label: labels[i] })));
    this.options = preprocessing;
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

  /** The training augmentation crops the decoded image, not the evaluation crop. */
  async readAugmented(index: number, target: Float32Array, random: () => number): Promise<number> {
    const { file, label } = this.files[index];
    await preprocessImage(file, this.options, target, random);
    return label;
  }
}
