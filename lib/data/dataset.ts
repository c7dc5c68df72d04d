/**
 * Data sets for calibration and evaluation: items of one shape, optional integer labels, and batches with
 * seeded shuffling, a sample limit and an offset. Batches are { input, labels } and feed gatherStats()
 * and evaluate().
 */
import { VbpError } from '../errors';
import type { Tensor } from '../tensor';
import { seededRandom } from '../util/random';
import { drawAugmentation, itemRandom, resizedCropInto } from './augment';

export interface Batch {
  input: Tensor<Float32Array>;
  /** Class index per item, -1 where unknown. */
  labels: Int32Array;
  /** Positions of the items in the data set. */
  indices: Int32Array;
}

export interface BatchOptions {
  batchSize?: number;
  /** Shuffle with `seed` (same seed, same order). */
  shuffle?: boolean;
  seed?: number;
  /** Use at most this many items (after shuffling). */
  limit?: number;
  /** Start after this many items of the (shuffled, limited) order: the rest of an interrupted run. */
  offset?: number;
  /**
   * Skip items the data set cannot read (a damaged image) instead of failing, calling `onSkip` for each;
   * the batch is filled from the next items.
   */
  skipBadItems?: boolean;
  onSkip?: (index: number, error: VbpError) => void;
  /**
   * One rank's part, by torch.utils.data.DistributedSampler's rule (drop_last false): the same order on every rank
   * (shuffled, limited), padded with its own first items to a multiple of worldSize, and rank r takes positions
   * r, r + worldSize, ...; so every rank has ceil(items / worldSize) items and as many batches. `offset` counts
   * within the part.
   */
  shard?: { rank: number; worldSize: number };
  /**
   * The training augmentation (RandomResizedCrop, then RandomHorizontalFlip), each item's draws seeded by `seed` and
   * its index: the same item gets the same crop whatever its batch, rank or offset.
   */
  augment?: { seed: number };
}

export interface Dataset {
  readonly size: number;
  /** Shape of one item after preprocessing, e.g. [1, 28, 28]. */
  readonly itemShape: number[];
  readonly classes?: string[];
  readonly description: string;
  /** Whether items carry labels (evaluate() needs them). Undefined: unknown, items may return -1. */
  readonly labelled?: boolean;
  /** Writes item `index` (preprocessed) into `target` and returns its label (-1 if none). */
  read(index: number, target: Float32Array): Promise<number>;
  /** How many read() calls batches() may have in flight at once (default 1): image decoding runs on several threads. */
  readonly concurrency?: number;
  /**
   * Writes item `index` with the training augmentation drawn from `random` (drawAugmentation() on its source image),
   * at itemShape. Without it, batches() augments the preprocessed item (augmentedRead()).
   */
  readAugmented?(index: number, target: Float32Array, random: () => number): Promise<number>;
  /** The order of a shuffled pass with `seed` (default: a seeded permutation of all items, shuffledOrder()). */
  shuffledOrder?(seed: number): Int32Array;
}

/** How batches() reads one item into its slot. */
type ReadItem = (index: number, target: Float32Array) => Promise<number>;

/** Item reads of `dataset`, augmented when `augment` is given (see BatchOptions.augment). */
function itemReader(dataset: Dataset, augment: BatchOptions['augment']): ReadItem {
  if (!augment) return (index, target) => dataset.read(index, target);
  if (dataset.readAugmented) {
    const own = dataset.readAugmented.bind(dataset);
    return (index, target) => own(index, target, itemRandom(augment.seed, index));
  }
  const [channels, height, width] = dataset.itemShape;
  if (dataset.itemShape.length !== 3)
    throw new VbpError(
      'INVALID_ARGUMENT',
      `the crop-flip augmentation needs [channels, height, width] items; ${dataset.description} has [${dataset.itemShape}]`,
    );
  return async (index, target) => {
    const item = new Float32Array(target.length);
    const label = await dataset.read(index, item);
    const augmentation = drawAugmentation(width, height, itemRandom(augment.seed, index));
    resizedCropInto(item, [channels, height, width], augmentation, height, width, target);
    return label;
  };
}

/** Seeded Fisher-Yates order of 0..n-1. */
export function shuffledOrder(n: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const random = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Items a batches() run with these options covers (limit and shard applied, offset not). */
export function itemCount(dataset: Dataset, options: BatchOptions = {}): number {
  const all = Math.min(dataset.size, options.limit ?? dataset.size);
  return options.shard ? Math.ceil(all / options.shard.worldSize) : all;
}

/** Rank `rank`'s positions of `order` (its first `count` items), DistributedSampler's rule (see BatchOptions.shard). */
export function shardOrder(order: Int32Array, count: number, rank: number, worldSize: number): Int32Array {
  const per = Math.ceil(count / worldSize);
  const part = new Int32Array(per);
  for (let i = 0; i < per; i++) part[i] = order[(rank + i * worldSize) % count];
  return part;
}

/** Batches of a data set that can be started again further on (gatherStats() resumes with it). */
export interface Batches extends AsyncIterable<Batch> {
  readonly batchSize: number;
  /**
   * The batches after the first `count`: without reading the items before them, unless bad items are
   * skipped (then where a batch ends depends on which items could be read, so they are read again).
   */
  skipBatches(count: number): AsyncIterable<Batch>;
}

function checkPositiveInteger(value: number | undefined, name: string, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min)) {
    throw new VbpError('INVALID_ARGUMENT', `${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Yields the data set in batches (the last one may be smaller). */
export function batches(dataset: Dataset, options: BatchOptions = {}): Batches {
  const batchSize = options.batchSize ?? 64;
  checkPositiveInteger(batchSize, 'batch size', 1);
  checkPositiveInteger(options.limit, 'limit', 1);
  checkPositiveInteger(options.offset, 'offset', 0);
  if (options.augment !== undefined) {
    if (typeof options.augment !== 'object' || options.augment === null || options.augment.seed === undefined)
      throw new VbpError('INVALID_ARGUMENT', 'augment must be { seed }, with an integer seed >= 0');
    checkPositiveInteger(options.augment.seed, 'augment.seed', 0);
  }
  if (options.shard) {
    checkPositiveInteger(options.shard.worldSize, 'shard.worldSize', 1);
    checkPositiveInteger(options.shard.rank, 'shard.rank', 0);
    if (options.shard.rank >= options.shard.worldSize)
      throw new VbpError(
        'INVALID_ARGUMENT',
        `shard.rank must be below shard.worldSize (${options.shard.worldSize}), got ${options.shard.rank}`,
      );
  }
  return {
    batchSize,
    skipBatches: (count: number) =>
      options.skipBadItems
        ? skipping(generate(dataset, batchSize, options), count)
        : batches(dataset, { ...options, offset: (options.offset ?? 0) + count * batchSize }),
    [Symbol.asyncIterator]: () => generate(dataset, batchSize, options),
  };
}

async function* skipping<T>(source: AsyncIterable<T>, count: number): AsyncGenerator<T> {
  let seen = 0;
  for await (const item of source) if (seen++ >= count) yield item;
}

async function* generate(dataset: Dataset, batchSize: number, options: BatchOptions): AsyncGenerator<Batch> {
  const full = options.shuffle
    ? (dataset.shuffledOrder?.(options.seed ?? 0) ?? shuffledOrder(dataset.size, options.seed ?? 0))
    : Int32Array.from({ length: dataset.size }, (_, i) => i);
  const { shard } = options;
  const order = shard
    ? shardOrder(full, itemCount(dataset, { limit: options.limit }), shard.rank, shard.worldSize)
    : full;
  const total = itemCount(dataset, options);
  const itemSize = dataset.itemShape.reduce((a, b) => a * b, 1);
  const concurrency = Math.max(1, Math.floor(dataset.concurrency ?? 1));
  const read = itemReader(dataset, options.augment);
  const start = options.offset ?? 0;
  const window = new BatchBuffers(start, total, batchSize, itemSize);
  const reads =
    concurrency === 1
      ? readInTurn(read, order, start, total)
      : readAhead(read, order, start, total, concurrency, window);
  // Until an item is skipped, batch b holds exactly the items of its place in the order, which the window reads
  // straight into b's buffer; after a skip the items are copied into place.
  let aligned = true;
  for (let remaining = total - Math.min(start, total), batch = 0; remaining > 0; batch++) {
    const data = aligned ? window.take(batch) : new Float32Array(Math.min(batchSize, remaining) * itemSize);
    const labels: number[] = [];
    const indices: number[] = [];
    // An unreadable item (skipped with skipBadItems) leaves its slot to the next one: batches keep data-set order.
    while (indices.length < batchSize && remaining > 0) {
      remaining--;
      const item = (await reads.next()).value as ItemRead;
      let label: number;
      try {
        label = await item.fill(data.subarray(indices.length * itemSize, (indices.length + 1) * itemSize));
      } catch (error) {
        if (!options.skipBadItems || !(error instanceof VbpError) || error.code !== 'DATA') throw error;
        options.onSkip?.(item.index, error);
        aligned = false;
        window.misalign();
        continue;
      }
      labels.push(label);
      indices.push(item.index);
    }
    if (indices.length === 0) break;
    const n = indices.length;
    yield {
      input: {
        data: n * itemSize === data.length ? data : data.slice(0, n * itemSize),
        shape: [n, ...dataset.itemShape],
        dtype: 'float32',
      },
      labels: Int32Array.from(labels),
      indices: Int32Array.from(indices),
    };
  }
}

/**
 * The buffers of the batches of one pass, each made once, by whichever asks first: the read of one of its items
 * (reading ahead) or the batch itself.
 */
class BatchBuffers {
  private readonly made = new Map<number, Float32Array>();
  private aligned = true;
  constructor(
    private readonly start: number,
    private readonly total: number,
    private readonly batchSize: number,
    private readonly itemSize: number,
  ) {}

  private buffer(batch: number): Float32Array {
    let buffer = this.made.get(batch);
    if (!buffer) {
      const items = Math.min(this.batchSize, this.total - this.start - batch * this.batchSize);
      buffer = new Float32Array(Math.max(0, items) * this.itemSize);
      this.made.set(batch, buffer);
    }
    return buffer;
  }

  /** After a skip the batches no longer line up with the order: items get buffers of their own. */
  misalign(): void {
    this.aligned = false;
    this.made.clear();
  }

  /** Where the item at `position` of the order lands: its slot while batches are aligned. */
  slotOf(position: number): Float32Array {
    if (!this.aligned) return new Float32Array(this.itemSize);
    const offset = position - this.start;
    const slot = offset % this.batchSize;
    return this.buffer(Math.floor(offset / this.batchSize)).subarray(slot * this.itemSize, (slot + 1) * this.itemSize);
  }

  /** Batch `batch`'s buffer, for the batch to fill and keep (the reads of its items may not have begun yet). */
  take(batch: number): Float32Array {
    const buffer = this.buffer(batch);
    for (const earlier of this.made.keys()) if (earlier < batch) this.made.delete(earlier);
    return buffer;
  }
}

/** An item of the order: `fill` writes it into its slot of the batch and returns its label, or throws. */
interface ItemRead {
  index: number;
  fill: (target: Float32Array) => Promise<number>;
}

/** Items one at a time, each read straight into its slot of the batch when the batch asks for it. */
function* readInTurn(read: ReadItem, order: Int32Array, start: number, total: number): Generator<ItemRead> {
  for (let next = start; next < total; next++) {
    const index = order[next];
    yield { index, fill: (target) => read(index, target) };
  }
}

/**
 * Items read `concurrency` at a time, in order: a sliding window of reads in flight (image decoding on
 * libuv's threads), reaching into the next batch while the caller works on this one.
 */
async function* readAhead(
  readItem: ReadItem,
  order: Int32Array,
  start: number,
  total: number,
  concurrency: number,
  window: BatchBuffers,
): AsyncGenerator<ItemRead> {
  const inFlight: Array<{ index: number; buffer: Float32Array; read: Promise<number> }> = [];
  let next = start;
  const launch = (): void => {
    while (inFlight.length < concurrency && next < total) {
      const index = order[next];
      // Straight into the item's slot of its batch; fill() copies only when a skip has moved the batches.
      const buffer = window.slotOf(next++);
      const read = readItem(index, buffer);
      read.catch(() => undefined); // rethrown by fill()
      inFlight.push({ index, buffer, read });
    }
  };
  launch();
  while (inFlight.length > 0) {
    const { index, buffer, read } = inFlight.shift()!;
    await read.catch(() => undefined);
    launch();
    yield {
      index,
      fill: async (target) => {
        const label = await read;
        const same = target.buffer === buffer.buffer && target.byteOffset === buffer.byteOffset;
        if (!same) target.set(buffer);
        return label;
      },
    };
  }
}
