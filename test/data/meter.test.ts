/** The data path's own rate (lib/data/meter.ts): reads timed, the consumer's time left out, the data set unchanged. */
import path from 'node:path';
import { DEBIAN_FASHION_MNIST, IdxDataset, batches, type Dataset } from '../../lib';
import { meteredDataset } from '../../lib/data/meter';
import { repoRoot, vbp } from '../helpers';

/** Items that take `readMs` each to read, two at a time. */
function slow(readMs: number): Dataset {
  return {
    size: 12,
    itemShape: [1],
    description: 'slow items',
    concurrency: 2,
    read: (index, target) =>
      new Promise((resolve) =>
        setTimeout(() => {
          target[0] = index;
          resolve(index);
        }, readMs),
      ),
  };
}

describe('meteredDataset', () => {
  it("counts the reads' own time, not the consumer's: the rate stays when the consumer is slow", async () => {
    const rates: number[] = [];
    for (const consumerMs of [0, 60]) {
      const meter = meteredDataset(slow(20));
      for await (const batch of batches(meter.dataset, { batchSize: 4 })) {
        expect(Array.from(batch.input.data)).toEqual(Array.from(batch.indices));
        await new Promise((resolve) => setTimeout(resolve, consumerMs));
      }
      expect(meter.items).toBe(12);
      rates.push(meter.imagesPerSecond());
    }
    // Two reads of 20 ms at a time: about 100 items/s either way (timers are coarse: a wide band).
    for (const rate of rates) expect(rate).toBeGreaterThan(25);
    for (const rate of rates) expect(rate).toBeLessThan(130);
    // With a slow consumer the wall-clock rate would be far lower (12 items in over 180 ms of waiting).
    expect(Math.abs(rates[1] - rates[0]) / rates[0]).toBeLessThan(0.6);
  });

  it('keeps the data set as it is: its class, size, classes, own order and augmented reads', async () => {
    const data = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test');
    const meter = meteredDataset(data);
    expect(meter.dataset).toBeInstanceOf(IdxDataset);
    expect([meter.dataset.size, meter.dataset.itemShape, meter.dataset.labelled]).toEqual([10000, [1, 28, 28], true]);
    // A data set with its own shuffled order and augmented reads: the same batches through the meter.
    const own: Dataset = {
      ...slow(0),
      concurrency: 1,
      shuffledOrder: (seed) => Int32Array.from({ length: 12 }, (_, i) => (i * 5 + seed) % 12),
      readAugmented: async (index, target, random) => {
        target[0] = index + random();
        return index;
      },
    };
    const options = { batchSize: 5, shuffle: true, seed: 1, augment: { seed: 3 } };
    const collect = async (d: Dataset) => {
      const out: number[] = [];
      for await (const b of batches(d, options)) out.push(...b.input.data);
      return out;
    };
    const metered = meteredDataset(own);
    expect(await collect(metered.dataset)).toEqual(await collect(own));
    expect(metered.items).toBe(12);
  });
});

describe('vbp eval reports the data path', () => {
  it('in its summary and JSON (dataItemsPerSecond)', () => {
    const args = [
      'eval',
      path.join(repoRoot, 'models', 'deit_fmnist.pt'),
      '--data',
      'fashion-mnist',
      '--split',
      'test',
    ];
    const run = vbp([...args, '--limit', '300', '--json']);
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as { dataItemsPerSecond: number; itemsPerSecond: number };
    expect(result.dataItemsPerSecond).toBeGreaterThan(0);
    const text = vbp([...args, '--limit', '300']);
    expect(text.stdout).toMatch(/items\/s \(the data path alone: \d+\)/);
  }, 60_000);
});
