/**
 * The data path's own speed: items read per second of the time at least one read was in flight. While the model is
 * the slower side the reads wait for it and that wait is not counted, so the rate says how fast the data could
 * come, whichever side sets the pace.
 */
import type { Dataset } from './dataset';

export interface DataMeter {
  /** The data set to read through (the same items; reads timed). */
  readonly dataset: Dataset;
  /** Items read, and the data path's rate (0 before the first read has finished). */
  readonly items: number;
  imagesPerSecond(): number;
}

export function meteredDataset(dataset: Dataset): DataMeter {
  let inFlight = 0;
  let busySince = 0;
  let busyMs = 0;
  let items = 0;
  const timed = async (read: () => Promise<number>): Promise<number> => {
    if (inFlight++ === 0) busySince = performance.now();
    try {
      const label = await read();
      items++;
      return label;
    } finally {
      if (--inFlight === 0) busyMs += performance.now() - busySince;
    }
  };
  // The same data set in every other respect (its order, concurrency, classes...).
  const metered: Dataset = Object.create(dataset, {
    read: { value: (index: number, target: Float32Array) => timed(() => dataset.read(index, target)) },
    ...(dataset.readAugmented
      ? {
          readAugmented: {
            value: (index: number, target: Float32Array, random: () => number) =>
              timed(() => dataset.readAugmented!(index, target, random)),
          },
        }
      : {}),
  }) as Dataset;
  return {
    dataset: metered,
    get items() {
      return items;
    },
    imagesPerSecond: () => {
      const ms = busyMs + (inFlight > 0 ? performance.now() - busySince : 0);
      return ms > 0 ? (items * 1000) / ms : 0;
    },
  };
}
