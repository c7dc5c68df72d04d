/**
 * Images in WebDataset tar shards (`train-{000000..001281}.tar`, each holding `<key>.jpg|jpeg|png|...` with
 * `<key>.cls`, the class index as text), preprocessed like an image folder's. Opening reads only the shards'
 * headers; an item's bytes are read when it is. An epoch's order is WebDataset's: the shards shuffled, their
 * items in archive order through a shuffle buffer, so that reads stay near each other in a shard. Ranks split that
 * order by DistributedSampler's rule, as every data set's (batches({ shard })), so they never overlap.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VbpError } from '../errors';
import { listTar } from '../formats/tar';
import { expandBraces } from '../util/braces';
import { seededRandom } from '../util/random';
import type { Dataset } from './dataset';
import {
  IMAGE_EXTENSIONS,
  checkDecodeThreads,
  checkPreprocessing,
  defaultDecodeThreads,
  preprocessImage,
  type ImagePreprocessing,
} from './image-folder';

export interface TarShardsOptions extends ImagePreprocessing {
  /**
   * Items in WebDataset's shuffle buffer (shuffle(n)) when batches() shuffles; 0: shards shuffled, items in order.
   * Default 1000.
   */
  shuffleBuffer?: number;
  /** Images decoded at once, as an image folder's (default: two per core). */
  threads?: number;
}

interface Sample {
  shard: number;
  key: string;
  /** The image member: its name, where its bytes are. */
  member: string;
  offset: number;
  size: number;
  label: number;
}

/** WebDataset's split of a member name into key and extension: the extension starts at the base name's first dot. */
function keyAndExtension(name: string): [string, string] | null {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1) return null;
  return [name.slice(0, dot), name.slice(dot + 1).toLowerCase()];
}

const IMAGE_TYPES = new Set(IMAGE_EXTENSIONS.map((e) => e.slice(1)));

export class TarShardDataset implements Dataset {
  readonly size: number;
  readonly itemShape: number[];
  readonly description: string;
  readonly labelled: boolean;
  /** Decodes in flight at once, as an image folder's. */
  readonly concurrency: number;
  readonly shards: string[];
  private readonly samples: Sample[];
  private readonly firstOfShard: Int32Array;
  private readonly options: ImagePreprocessing;
  private readonly shuffleBuffer: number;

  /** `shards`: a brace pattern (or one file), or the list of shard files. */
  constructor(shards: string | string[], options: TarShardsOptions = {}) {
    const { shuffleBuffer, threads, ...preprocessing } = options;
    checkPreprocessing(preprocessing);
    checkDecodeThreads(threads);
    this.concurrency = threads ?? defaultDecodeThreads();
    if (shuffleBuffer !== undefined && (!Number.isInteger(shuffleBuffer) || shuffleBuffer < 0))
      throw new VbpError('INVALID_ARGUMENT', `shuffleBuffer must be an integer >= 0, got ${String(shuffleBuffer)}`);
    this.shuffleBuffer = shuffleBuffer ?? 1000;
    this.shards = typeof shards === 'string' ? expandBraces(shards) : [...shards];
    if (this.shards.length === 0) throw new VbpError('INVALID_ARGUMENT', 'no tar shards given');
    const missing = this.shards.filter((f) => !fs.statSync(f, { throwIfNoEntry: false })?.isFile());
    if (missing.length > 0)
      throw new VbpError(
        'IO',
        `${missing.length} of ${this.shards.length} tar shard(s) do not exist: ${missing
          .slice(0, 3)
          .map((f) => `'${f}'`)
          .join(', ')}${missing.length > 3 ? ', ...' : ''}`,
      );
    this.samples = [];
    this.firstOfShard = new Int32Array(this.shards.length + 1);
    this.shards.forEach((file, shard) => {
      this.firstOfShard[shard] = this.samples.length;
      this.samples.push(...samplesOf(file, shard));
    });
    this.firstOfShard[this.shards.length] = this.samples.length;
    if (this.samples.length === 0) throw new VbpError('DATA', `no image samples in ${this.shards.length} tar shard(s)`);
    this.options = preprocessing;
    this.labelled = this.samples.every((s) => s.label >= 0);
    const crop = preprocessing.crop ?? 224;
    this.size = this.samples.length;
    this.itemShape = [preprocessing.channels ?? 3, crop, crop];
    const where =
      this.shards.length === 1 ? this.shards[0] : `${path.dirname(this.shards[0])} (${this.shards.length} shards)`;
    this.description = `${where} (${this.size} images in tar shards)`;
  }

  /** Where item `index` comes from: its shard and key. */
  sample(index: number): { shard: string; key: string; member: string; label: number } {
    const s = this.samples[index];
    return { shard: this.shards[s.shard], key: s.key, member: s.member, label: s.label };
  }

  /** WebDataset's epoch order: the shards in a seeded order, their items through a seeded shuffle buffer. */
  shuffledOrder(seed: number): Int32Array {
    const random = seededRandom(seed);
    const shards = Int32Array.from({ length: this.shards.length }, (_, i) => i);
    for (let i = shards.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [shards[i], shards[j]] = [shards[j], shards[i]];
    }
    const order = new Int32Array(this.size);
    let out = 0;
    const buffer: number[] = [];
    for (const shard of shards) {
      for (let index = this.firstOfShard[shard]; index < this.firstOfShard[shard + 1]; index++) {
        if (this.shuffleBuffer === 0) {
          order[out++] = index;
          continue;
        }
        // A full buffer gives up a random item for each new one.
        if (buffer.length >= this.shuffleBuffer) {
          const k = Math.floor(random() * buffer.length);
          order[out++] = buffer[k];
          buffer[k] = index;
        } else buffer.push(index);
      }
    }
    while (buffer.length > 0) {
      const k = Math.floor(random() * buffer.length);
      order[out++] = buffer[k];
      buffer[k] = buffer[buffer.length - 1];
      buffer.pop();
    }
    return order;
  }

  async read(index: number, target: Float32Array): Promise<number> {
    return this.readWith(index, target);
  }

  async readAugmented(index: number, target: Float32Array, random: () => number): Promise<number> {
    return this.readWith(index, target, random);
  }

  private async readWith(index: number, target: Float32Array, random?: () => number): Promise<number> {
    const s = this.samples[index];
    const file = this.shards[s.shard];
    const image = { file, offset: s.offset, length: s.size, member: s.member, name: `${s.member}' in '${file}` };
    await preprocessImage(image, this.options, target, random);
    return s.label;
  }
}

/** The image samples of one shard, grouped by key; DATA for a sample with two images or a bad class. */
function samplesOf(file: string, shard: number): Sample[] {
  const byKey = new Map<string, { image?: { member: string; offset: number; size: number }; label?: number }>();
  const order: string[] = [];
  const fd = fs.openSync(file, 'r');
  try {
    for (const member of listTar(file)) {
      const split = keyAndExtension(member.name);
      if (!split) continue;
      const [key, extension] = split;
      if (!byKey.has(key)) {
        byKey.set(key, {});
        order.push(key);
      }
      const sample = byKey.get(key)!;
      if (IMAGE_TYPES.has(extension)) {
        if (sample.image)
          throw new VbpError(
            'DATA',
            `tar shard '${file}': sample '${key}' has two images ('${sample.image.member}', '${member.name}')`,
          );
        sample.image = { member: member.name, offset: member.offset, size: member.size };
      } else if (extension === 'cls') {
        const bytes = Buffer.alloc(Math.min(member.size, 64));
        fs.readSync(fd, bytes, 0, bytes.length, member.offset);
        const textValue = bytes.toString('utf8').trim();
        if (!/^\d+$/.test(textValue))
          throw new VbpError(
            'DATA',
            `tar shard '${file}': '${member.name}' holds ${JSON.stringify(textValue)}, expected a class index`,
          );
        sample.label = Number(textValue);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  // Keys with other members only (.json, .txt) are no images; they are left out.
  return order
    .filter((key) => byKey.get(key)!.image)
    .map((key) => {
      const { image, label } = byKey.get(key)!;
      return { shard, key, ...image!, label: label ?? -1 };
    });
}
