/**
 * One shard of a data set for calibration spread over machines: shard i of n holds items i, i + n, i + 2n...
 * of the data set (before any shuffling or limit), so that n jobs (a Slurm job array, a Kubernetes Indexed
 * Job) cover every item exactly once and their statistics merge into those of the whole set.
 */
import { VbpError } from '../errors';
import type { Dataset } from './dataset';

export function shardOf(dataset: Dataset, index: number, count: number): Dataset {
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new VbpError('INVALID_ARGUMENT', `a shard is I/N with 0 <= I < N, got ${index}/${count}`);
  }
  const size = Math.max(0, Math.ceil((dataset.size - index) / count));
  return {
    size,
    itemShape: dataset.itemShape,
    classes: dataset.classes,
    labelled: dataset.labelled,
    concurrency: dataset.concurrency,
    description: `${dataset.description}, shard ${index}/${count} (${size} items)`,
    read: (i, target) => dataset.read(index + i * count, target),
    ...(dataset.readAugmented
      ? { readAugmented: (i, target, random) => dataset.readAugmented!(index + i * count, target, random) }
      : {}),
  };
}

/** The items `order` names, in that order, as a data set of their own (a calibration's selection). */
export function selectionOf(dataset: Dataset, order: Int32Array, description: string): Dataset {
  return {
    size: order.length,
    itemShape: dataset.itemShape,
    classes: dataset.classes,
    labelled: dataset.labelled,
    concurrency: dataset.concurrency,
    description,
    read: (i, target) => dataset.read(order[i], target),
    ...(dataset.readAugmented
      ? { readAugmented: (i, target, random) => dataset.readAugmented!(order[i], target, random) }
      : {}),
  };
}
