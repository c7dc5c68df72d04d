/**
 * The crop-flip training augmentation against torchvision 0.14 (test/python/crop_reference.py): the crop-box rule on
 * the same random numbers, the distribution of boxes over many draws, the resized crop of a given box (PIL's bilinear
 * on Fashion-MNIST items, PIL's bicubic on image files), and per-item seeding through batches() and finetune().
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  DEBIAN_FASHION_MNIST,
  IdxDataset,
  ImageFolderDataset,
  batches,
  drawAugmentation,
  finetune,
  formatNpy,
  itemRandom,
  loadModel,
  randomResizedCropBox,
  readNpy,
  resizedCropInto,
  type Batch,
  type CropBox,
  type Model,
} from '../../lib';
import { seededRandom } from '../../lib/util/random';
import { repoRoot, runPython, tempDir } from '../helpers';

const dir = tempDir('torch-vbp-augment-');
/** The files test/python/image_reference.py writes: width, height. */
const IMAGE_SIZES: Record<string, [number, number]> = {
  'a.png': [320, 400],
  'b.jpg': [500, 375],
  'c.png': [256, 256],
  'd.jpg': [640, 480],
};
const reference = (args: string[]): string => runPython('crop_reference.py', args);

/** Kolmogorov-Smirnov distance between two samples. */
function ksDistance(a: number[], b: number[]): number {
  const [x, y] = [[...a].sort((p, q) => p - q), [...b].sort((p, q) => p - q)];
  let [i, j, worst] = [0, 0, 0];
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i], y[j]);
    while (i < x.length && x[i] <= v) i++;
    while (j < y.length && y[j] <= v) j++;
    worst = Math.max(worst, Math.abs(i / x.length - j / y.length));
  }
  return worst;
}

describe("RandomResizedCrop's box rule", () => {
  it("equals torchvision's get_params on the same random numbers, fallback to the central crop included", () => {
    const sizes: Array<[number, number]> = [
      [500, 375],
      [28, 28],
      [320, 400],
      [1, 1],
      [3, 200],
      [200, 3],
      [7, 40],
      [640, 96],
    ];
    const random = seededRandom(11);
    const cases = sizes.flatMap(([width, height]) =>
      Array.from({ length: 40 }, () => ({ width, height, draws: Array.from({ length: 24 }, random) })),
    );
    // Ten rejected attempts on a square image (nearly all of its area at the widest ratio): the whole image.
    cases.push({ width: 50, height: 50, draws: new Array<number>(24).fill(0.999) });
    const file = path.join(dir, 'box-cases.json');
    fs.writeFileSync(file, JSON.stringify(cases));
    const expected = JSON.parse(reference(['boxes', file])) as number[][];
    let fallbacks = 0;
    cases.forEach((c, k) => {
      let used = 0;
      const box = randomResizedCropBox(c.width, c.height, () => c.draws[used++]);
      expect([box.top, box.left, box.height, box.width, used]).toEqual(expected[k]);
      if (used === 20) fallbacks++;
    });
    // The cases reach the fallback (every attempt rejected) often enough to test it.
    expect(fallbacks).toBeGreaterThanOrEqual(40);
    expect(expected[cases.length - 1]).toEqual([0, 0, 50, 50, 20]);
  }, 60_000);

  it("draws boxes distributed as torchvision's (20,000 per side, Kolmogorov-Smirnov at the 0.1 % level)", () => {
    const [width, height, n] = [500, 375, 20_000];
    const theirs = (
      JSON.parse(reference(['distribution', String(width), String(height), String(n), '0'])) as number[][]
    ).map(([top, left, h, w]) => ({ top, left, height: h, width: w }));
    const ours: CropBox[] = Array.from({ length: n }, (_, i) => randomResizedCropBox(width, height, itemRandom(7, i)));
    const critical = 1.95 * Math.sqrt(2 / n); // alpha 0.001
    const measures: Record<string, (b: CropBox) => number> = {
      'area share': (b) => (b.width * b.height) / (width * height),
      'log aspect': (b) => Math.log(b.width / b.height),
      'relative top': (b) => (b.height < height ? b.top / (height - b.height) : 0.5),
      'relative left': (b) => (b.width < width ? b.left / (width - b.width) : 0.5),
    };
    for (const [name, measure] of Object.entries(measures)) {
      const d = ksDistance(ours.map(measure), theirs.map(measure));
      expect({ name, d: d < critical }).toEqual({ name, d: true });
    }
    // And the horizontal flip: half of the items, drawn after the box.
    const flips = Array.from({ length: n }, (_, i) => drawAugmentation(width, height, itemRandom(7, i)).flip);
    expect(Math.abs(flips.filter(Boolean).length / n - 0.5)).toBeLessThan(0.015);
  }, 60_000);
});

describe('resized crop of a given box', () => {
  it("Fashion-MNIST items: PIL's bilinear resized_crop and hflip, within 0.5 grey levels on average and 1.5 at worst", async () => {
    const data = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test');
    const count = 12;
    const pixels = new Uint8Array(count * 28 * 28);
    const item = new Float32Array(28 * 28);
    for (let k = 0; k < count; k++) {
      await data.read(k * 97, item);
      for (let p = 0; p < item.length; p++) pixels[k * 784 + p] = Math.round(item[p] * 255);
    }
    const imagesFile = path.join(dir, 'items.npy');
    fs.writeFileSync(imagesFile, formatNpy({ data: pixels, shape: [count, 28, 28], dtype: 'uint8' }));
    const cases = Array.from({ length: 240 }, (_, i) => {
      const a = drawAugmentation(28, 28, itemRandom(5, i));
      return { image: i % count, ...a.box, flip: a.flip };
    });
    // A box of the whole item and one that upscales a 1-pixel-wide strip: the filter's edges.
    cases.push({ image: 0, top: 0, left: 0, height: 28, width: 28, flip: false });
    cases.push({ image: 1, top: 3, left: 20, height: 10, width: 1, flip: true });
    const casesFile = path.join(dir, 'resize-cases.json');
    fs.writeFileSync(casesFile, JSON.stringify(cases));
    // 28: the training size (every box is upscaled); 12: boxes larger than the output, where the filter widens.
    for (const size of [28, 12]) {
      const out = path.join(dir, `resized-${size}.npy`);
      reference(['resized', imagesFile, casesFile, String(size), out]);
      const expected = readNpy(out).data as Float32Array;
      const plane = size * size;
      let [worst, total] = [0, 0];
      const target = new Float32Array(plane);
      cases.forEach((c, k) => {
        const source = Float32Array.from(pixels.subarray(c.image * 784, (c.image + 1) * 784));
        resizedCropInto(source, [1, 28, 28], { box: c, flip: c.flip }, size, size, target);
        for (let p = 0; p < plane; p++) {
          const d = Math.abs(target[p] - expected[k * plane + p]);
          worst = Math.max(worst, d);
          total += d;
        }
      });
      // PIL rounds to whole grey levels after each of its two passes; we keep float values.
      if (process.env.VBP_MEASURE)
        console.log(`bilinear ${size}: mean ${total / (cases.length * plane)}, worst ${worst}`);
      expect(total / (cases.length * plane)).toBeLessThan(0.5);
      expect(worst).toBeLessThanOrEqual(1.5);
    }
  }, 60_000);

  it("image files (sharp): PIL's bicubic resized_crop and hflip of the decoded image, within 0.5 grey levels on average", async () => {
    runPython('image_reference.py', [dir]);
    const data = new ImageFolderDataset(path.join(dir, 'images'), { crop: 64, mean: [0, 0, 0], std: [1, 1, 1] });
    const cases: Array<{ file: string; top: number; left: number; height: number; width: number; flip: boolean }> = [];
    const ours: Float32Array[] = [];
    for (let i = 0; i < 16; i++) {
      const index = i % data.size;
      const item = new Float32Array(3 * 64 * 64);
      await data.readAugmented(index, item, itemRandom(3, i));
      ours.push(item);
      const { file } = data.files[index];
      const [width, height] = IMAGE_SIZES[path.basename(file)];
      const a = drawAugmentation(width, height, itemRandom(3, i));
      cases.push({ file, ...a.box, flip: a.flip });
    }
    const casesFile = path.join(dir, 'file-cases.json');
    const out = path.join(dir, 'file-crops.npy');
    fs.writeFileSync(casesFile, JSON.stringify(cases));
    reference(['files', casesFile, '64', out]);
    const expected = readNpy(out).data as Float32Array;
    const n = 3 * 64 * 64;
    let total = 0;
    ours.forEach((item, k) => {
      for (let p = 0; p < n; p++) total += Math.abs(item[p] * 255 - expected[k * n + p]);
    });
    expect(cases.some((c) => c.flip) && cases.some((c) => !c.flip)).toBe(true);
    if (process.env.VBP_MEASURE) console.log(`bicubic files: mean ${total / (ours.length * n)}`);
    expect(total / (ours.length * n)).toBeLessThan(0.5);
  }, 120_000);
});

describe('per-item seeding', () => {
  const byIndex = async (source: AsyncIterable<Batch>): Promise<Map<number, Float32Array>> => {
    const items = new Map<number, Float32Array>();
    for await (const b of source)
      b.indices.forEach((index, k) => items.set(index, b.input.data.slice(k * 784, (k + 1) * 784)));
    return items;
  };

  it('an item gets the same crop in any batch size, offset or rank, another in another epoch, and none without augment', async () => {
    const data = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test', { normalise: { mean: [0.286], std: [0.353] } });
    const base = { shuffle: true, seed: 4, limit: 40, augment: { seed: 9 } };
    const whole = await byIndex(batches(data, { ...base, batchSize: 8 }));
    const other = await byIndex(batches(data, { ...base, batchSize: 5 }));
    const later = await byIndex(batches(data, { ...base, batchSize: 8, offset: 16 }));
    const ranks = [0, 1].map((rank) =>
      byIndex(batches(data, { ...base, batchSize: 4, shard: { rank, worldSize: 2 } })),
    );
    const plain = await byIndex(batches(data, { ...base, batchSize: 8, augment: undefined }));
    const nextEpoch = await byIndex(batches(data, { ...base, batchSize: 8, augment: { seed: 10 } }));
    expect(whole.size).toBe(40);
    for (const [index, item] of whole) {
      expect(other.get(index)).toEqual(item);
      if (later.has(index)) expect(later.get(index)).toEqual(item);
      expect(plain.get(index)).not.toEqual(item);
      expect(nextEpoch.get(index)).not.toEqual(item);
    }
    expect(later.size).toBe(24);
    for (const part of await Promise.all(ranks))
      for (const [index, item] of part) expect(item).toEqual(whole.get(index));
  });

  describe('finetune({ trainTransform: "crop-flip" })', () => {
    let student: Model;
    beforeAll(async () => {
      student = await loadModel(path.join(repoRoot, 'models', 'deit_fmnist.pt'));
    });
    afterAll(() => student.dispose());
    const data = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train');

    async function run(options: Record<string, unknown>) {
      return finetune(student, { data, batchSize: 8, stepsPerEpoch: 3, epochs: 2, lr: 1e-3, seed: 1, ...options });
    }

    it('reproduces itself, trains on other items than none, and a checkpoint of it resumes bit for bit', async () => {
      const checkpoint = path.join(dir, 'crop-flip.ckpt.pt');
      const whole = await run({ trainTransform: 'crop-flip' });
      const none = await run({ trainTransform: 'none' });
      expect(none.report.loss[0]).not.toEqual(whole.report.loss[0]);
      // Stopped in the second epoch after a checkpoint at step 3, then resumed.
      const controller = new AbortController();
      const stopped = await run({
        trainTransform: 'crop-flip',
        checkpoint: { path: checkpoint, every: 3 },
        signal: controller.signal,
        onProgress: (p: { step: number }) => p.step === 5 && controller.abort(),
      }).catch((e: { code: string; model?: Model }) => e);
      expect((stopped as { code: string }).code).toBe('ABORTED');
      await (stopped as { model?: Model }).model?.dispose();
      // The checkpoint's settings carry the transform: resuming it without is refused.
      await expect(run({ trainTransform: 'none', resume: checkpoint })).rejects.toThrow(/trainTransform/);
      const resumed = await run({ trainTransform: 'crop-flip', resume: checkpoint });
      expect(resumed.report.resumedAt).toBe(3);
      expect(resumed.report.loss).toEqual(whole.report.loss);
      for (const { name } of whole.model.parameters())
        expect((await resumed.model.parameter(name)).data).toEqual((await whole.model.parameter(name)).data);
      await Promise.all([whole.model.dispose(), none.model.dispose(), resumed.model.dispose()]);
    }, 120_000);

    it('refuses an unknown transform, and a transform with a data function, with INVALID_ARGUMENT', async () => {
      await expect(run({ trainTransform: 'mixup' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('trainTransform must be one of none, crop-flip'),
      });
      await expect(
        finetune(student, { data: async function* () {}, stepsPerEpoch: 1, trainTransform: 'crop-flip' }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('a data function') });
    });
  });
});
