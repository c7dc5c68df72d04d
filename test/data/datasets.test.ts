/** Data loaders against the raw files and against torchvision's preprocessing. */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  IdxDataset,
  parseIdx,
  DEBIAN_FASHION_MNIST,
  NpyDataset,
  ImageFolderDataset,
  batches,
  shuffledOrder,
  formatNpy,
  readNpy,
  VbpError,
  type Dataset,
} from '../../lib';
import { prefetch } from '../../lib/data/prefetch';
import { runPython, tempDir } from '../helpers';

interface PixelReference {
  shape: number[];
  labels: number[];
  histogram: number[];
  items: number[][];
}

describe('IDX (Fashion-MNIST from Debian)', () => {
  it.each([
    ['train', [0, 1, 12345, 59999]],
    ['test', [0, 9999]],
  ] as Array<['train' | 'test', number[]]>)(
    '%s split: shape, labels and pixels equal a Python read of the raw files',
    async (split, indices) => {
      const ref = JSON.parse(
        runPython('fmnist_reference.py', ['pixels', DEBIAN_FASHION_MNIST, split, ...indices.map(String)]),
      ) as PixelReference;
      const data = IdxDataset.split(DEBIAN_FASHION_MNIST, split);
      expect([data.size, ...data.itemShape.slice(1)]).toEqual(ref.shape);
      const item = new Float32Array(28 * 28);
      for (let k = 0; k < indices.length; k++) {
        const label = await data.read(indices[k], item);
        expect(label).toBe(ref.labels[k]);
        expect(Array.from(item, (v) => Math.round(v * 255))).toEqual(ref.items[k]);
      }
      const histogram = new Array(10).fill(0);
      for await (const batch of batches(data, { batchSize: 5000 })) for (const l of batch.labels) histogram[l]++;
      expect(histogram).toEqual(ref.histogram);
    },
  );

  it('normalises with the given mean and std', async () => {
    const data = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test', { normalise: { mean: [0.286], std: [0.353] } });
    const plain = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test');
    const a = new Float32Array(784);
    const b = new Float32Array(784);
    await data.read(3, a);
    await plain.read(3, b);
    for (let i = 0; i < 784; i += 97) expect(a[i]).toBeCloseTo((b[i] - 0.286) / 0.353, 5);
  });

  it('reads uncompressed files too, and rejects corrupt ones with DATA', () => {
    const dir = tempDir();
    const raw = zlib.gunzipSync(fs.readFileSync(path.join(DEBIAN_FASHION_MNIST, 't10k-labels-idx1-ubyte.gz')));
    fs.writeFileSync(path.join(dir, 'labels'), raw);
    expect(parseIdx(fs.readFileSync(path.join(dir, 'labels'))).shape).toEqual([10000]);
    expect(() => parseIdx(raw.subarray(0, 100))).toThrow(expect.objectContaining({ code: 'DATA' }));
    expect(() => parseIdx(Buffer.from([1, 2, 3, 4, 5]))).toThrow(expect.objectContaining({ code: 'DATA' }));
    expect(() => parseIdx(Buffer.from([0x1f, 0x8b, 0, 0, 1]))).toThrow(expect.objectContaining({ code: 'DATA' }));
    expect(() => IdxDataset.split(dir, 'train')).toThrow(expect.objectContaining({ code: 'DATA' }));
  });
});

describe('batches', () => {
  it('shuffles with a seed (same seed, same order), limits and keeps the last partial batch', async () => {
    const data = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test');
    const collect = async (seed: number): Promise<number[]> => {
      const seen: number[] = [];
      for await (const b of batches(data, { batchSize: 64, shuffle: true, seed, limit: 200 })) {
        expect(b.input.shape).toEqual([b.labels.length, 1, 28, 28]);
        seen.push(...b.indices);
      }
      return seen;
    };
    const a = await collect(1);
    expect(a).toHaveLength(200);
    expect(new Set(a).size).toBe(200);
    expect(await collect(1)).toEqual(a);
    expect(await collect(2)).not.toEqual(a);
    const order = shuffledOrder(10, 3);
    expect([...order].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('.npy data', () => {
  it('reads float32 and uint8 items with int64 labels', async () => {
    const dir = tempDir();
    const items = new Float32Array(3 * 2 * 2).map((_, i) => i / 10);
    fs.writeFileSync(path.join(dir, 'x.npy'), formatNpy({ data: items, shape: [3, 2, 2] }));
    fs.writeFileSync(path.join(dir, 'y.npy'), formatNpy({ data: BigInt64Array.from([2n, 0n, 1n]), shape: [3] }));
    fs.writeFileSync(path.join(dir, 'u.npy'), formatNpy({ data: Uint8Array.from([0, 255, 51, 102]), shape: [1, 4] }));
    const data = new NpyDataset(path.join(dir, 'x.npy'), path.join(dir, 'y.npy'));
    expect(data.itemShape).toEqual([2, 2]);
    const item = new Float32Array(4);
    expect(await data.read(1, item)).toBe(0);
    expect(Array.from(item)).toEqual(Array.from(items.subarray(4, 8)));
    const bytes = new NpyDataset(path.join(dir, 'u.npy'));
    await bytes.read(0, item);
    expect(Array.from(item)).toEqual([0, 1, 0.2, 0.4].map((v) => Math.fround(v)));
    expect(readNpy(path.join(dir, 'x.npy')).shape).toEqual([3, 2, 2]);
    fs.writeFileSync(path.join(dir, 'bad.npy'), 'not numpy');
    expect(() => new NpyDataset(path.join(dir, 'bad.npy'))).toThrow(expect.objectContaining({ code: 'DATA' }));
    expect(() => new NpyDataset(path.join(dir, 'x.npy'), path.join(dir, 'u.npy'))).toThrow(
      expect.objectContaining({ code: 'DATA' }),
    );
  });

  it('normalises .npy items per channel like IDX items, and reads [N, H, W] as [N, 1, H, W] for such a model', async () => {
    const dir = tempDir();
    const pixels = Uint8Array.from({ length: 2 * 28 * 28 }, (_, i) => (i * 37) % 256);
    fs.writeFileSync(path.join(dir, 'grey.npy'), formatNpy({ data: pixels, shape: [2, 28, 28] }));
    const normalise = { mean: [0.286], std: [0.353] };
    const data = new NpyDataset(path.join(dir, 'grey.npy'), undefined, { normalise, itemShape: [1, 28, 28] });
    expect(data.itemShape).toEqual([1, 28, 28]);
    const item = new Float32Array(784);
    await data.read(1, item);
    expect(Array.from(item)).toEqual(Array.from(pixels.subarray(784), (p) => Math.fround((p / 255 - 0.286) / 0.353)));
    const rgb = new Float32Array(2 * 3 * 4).map((_, i) => i / 24);
    fs.writeFileSync(path.join(dir, 'rgb.npy'), formatNpy({ data: rgb, shape: [2, 3, 2, 2] }));
    const perChannel = new NpyDataset(path.join(dir, 'rgb.npy'), undefined, {
      normalise: { mean: [0.1, 0.2, 0.3], std: [1, 2, 4] },
    });
    const x = new Float32Array(12);
    await perChannel.read(0, x);
    expect(Array.from(x)).toEqual(
      Array.from(rgb.subarray(0, 12), (v, i) => Math.fround((v - [0.1, 0.2, 0.3][i >> 2]) / [1, 2, 4][i >> 2])),
    );
    expect(
      () => new NpyDataset(path.join(dir, 'rgb.npy'), undefined, { normalise: { mean: [0.1, 0.2], std: [1, 1] } }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('3 channel') }));
    expect(() => new NpyDataset(path.join(dir, 'grey.npy'), undefined, { itemShape: [3, 28, 28] })).toThrow(
      expect.objectContaining({ code: 'DATA' }),
    );
  });
});

describe('image folders (sharp) against torchvision', () => {
  const dir = tempDir();
  beforeAll(() => runPython('image_reference.py', [dir]));

  it.each([224, 160])(
    'resize + center crop %s + normalise: within 2/255 of torchvision per value (mean |diff| < 0.005)',
    async (crop) => {
      const data = new ImageFolderDataset(path.join(dir, 'images'), { crop });
      expect(data.classes).toEqual(['cat', 'dog']);
      expect(data.files.map((f) => f.file)).toEqual(JSON.parse(fs.readFileSync(path.join(dir, 'files.json'), 'utf8')));
      const expected = readNpy(path.join(dir, `expected_${crop}.npy`)).data as Float32Array;
      const n = 3 * crop * crop;
      let worst = 0;
      let total = 0;
      for (let i = 0; i < data.size; i++) {
        const item = new Float32Array(n);
        expect(await data.read(i, item)).toBe(i < 2 ? 0 : 1);
        for (let j = 0; j < n; j++) {
          const d = Math.abs(item[j] - expected[i * n + j]);
          worst = Math.max(worst, d);
          total += d;
        }
      }
      // Measured here: max 0.035 (2 grey levels / 0.229), mean 0.001-0.003; libvips and PIL resample differently.
      expect(worst).toBeLessThanOrEqual(2.01 / 255 / 0.225);
      expect(total / (data.size * n)).toBeLessThan(0.005);
    },
  );

  it("finds the classes and files torchvision's ImageFolder finds: symlinked class folders, subfolders, its extensions", () => {
    const root = tempDir('torch-vbp-tree-');
    const elsewhere = tempDir('torch-vbp-elsewhere-');
    const touch = (...parts: string[]): void => {
      fs.mkdirSync(path.join(root, ...parts.slice(0, -1)), { recursive: true });
      fs.writeFileSync(path.join(root, ...parts), '');
    };
    touch('b_class', 'img1.png');
    touch('b_class', 'sub', 'img2.jpg');
    touch('b_class', 'sub', 'deeper', 'img3.JPEG');
    touch('b_class', 'notes.txt');
    touch('c_class', 'y.PNG');
    touch('c_class', 'z.bmp');
    touch('c_class', 'w.gif'); // not an ImageFolder extension
    touch('readme.txt');
    fs.mkdirSync(path.join(elsewhere, 'real_a'));
    fs.writeFileSync(path.join(elsewhere, 'real_a', 'x.png'), '');
    fs.mkdirSync(path.join(elsewhere, 'more'));
    fs.writeFileSync(path.join(elsewhere, 'more', 'm.webp'), '');
    fs.symlinkSync(path.join(elsewhere, 'real_a'), path.join(root, 'a_class')); // a class folder that is a link
    fs.symlinkSync(path.join(elsewhere, 'more'), path.join(root, 'c_class', 'linked')); // a linked subfolder
    const reference = JSON.parse(runPython('image_reference.py', ['--list', root])) as {
      classes: string[];
      samples: Array<[string, number]>;
    };
    const data = new ImageFolderDataset(root, { crop: 32 });
    expect(data.classes).toEqual(['a_class', 'b_class', 'c_class']);
    expect(data.classes).toEqual(reference.classes);
    expect(data.files.map((f) => [f.file, f.label])).toEqual(reference.samples);
    expect(data.size).toBe(7);
    // With the model's class order (a card's `classes`), labels follow it, not the folder order.
    const ordered = new ImageFolderDataset(root, { crop: 32, classes: ['c_class', 'a_class', 'b_class', 'unused'] });
    expect(ordered.files.map((f) => f.label)).toEqual(reference.samples.map(([, label]) => [1, 2, 0][label]));
    expect(() => new ImageFolderDataset(root, { classes: ['a_class', 'b_class'] })).toThrow(
      expect.objectContaining({ code: 'DATA', message: expect.stringContaining("'c_class'") }),
    );
  });

  it.each([224, 160])(
    "JPEGs through the native core (the default decoder) equal torchvision's PIL path bit for bit (crop %s)",
    async (crop) => {
      const data = new ImageFolderDataset(path.join(dir, 'images'), { crop });
      const viaSharp = new ImageFolderDataset(path.join(dir, 'images'), { crop, decoder: 'sharp' });
      const expected = readNpy(path.join(dir, `expected_${crop}.npy`)).data as Float32Array;
      const n = 3 * crop * crop;
      const jpegs = data.files.map((f, i) => [f.file, i] as const).filter(([file]) => file.endsWith('.jpg'));
      expect(jpegs).toHaveLength(2);
      for (const [, i] of jpegs) {
        const [item, other] = [new Float32Array(n), new Float32Array(n)];
        await data.read(i, item);
        expect(item).toEqual(expected.subarray(i * n, (i + 1) * n));
        // sharp resamples otherwise (libvips): not equal, within the tolerance above.
        await viaSharp.read(i, other);
        expect(other).not.toEqual(item);
      }
    },
  );

  it("a greyscale JPEG through the native core equals torchvision's convert('RGB') path bit for bit", async () => {
    runPython('image_reference.py', ['--grey', dir]);
    const data = new ImageFolderDataset(path.join(dir, 'grey'), { crop: 32, resize: 37 });
    const item = new Float32Array(3 * 32 * 32);
    await data.read(0, item);
    expect(item).toEqual(readNpy(path.join(dir, 'grey_expected.npy')).data);
  });

  it('the native core leaves to sharp what it does not reproduce (EXIF rotation, CMYK) and names damaged JPEGs', async () => {
    const sharp = (await import('sharp')).default;
    const root = tempDir('torch-vbp-jpegs-');
    fs.mkdirSync(path.join(root, 'a'));
    const pixels = Buffer.alloc(64 * 48 * 3);
    for (let p = 0; p < pixels.length; p++) pixels[p] = (p * 13) & 255;
    const raw = { raw: { width: 64, height: 48, channels: 3 as const } };
    await sharp(pixels, raw)
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toFile(path.join(root, 'a', 'rotated.jpg'));
    await sharp(pixels, raw)
      .jpeg()
      .toColourspace('cmyk')
      .toFile(path.join(root, 'a', 'cmyk.jpg'));
    const good = await sharp(pixels, raw).jpeg().toBuffer();
    fs.writeFileSync(path.join(root, 'a', 'truncated.jpg'), good.subarray(0, Math.floor(good.length / 2)));
    fs.writeFileSync(
      path.join(root, 'a', 'zdamaged.jpg'),
      Buffer.concat([good.subarray(0, 200), Buffer.alloc(300, 0xff)]),
    );
    const options = { crop: 32, resize: 36 };
    const data = new ImageFolderDataset(root, options);
    const viaSharp = new ImageFolderDataset(root, { ...options, decoder: 'sharp' });
    expect(data.files.map((f) => path.basename(f.file))).toEqual([
      'cmyk.jpg',
      'rotated.jpg',
      'truncated.jpg',
      'zdamaged.jpg',
    ]);
    for (const i of [0, 1]) {
      const [a, b] = [new Float32Array(3 * 32 * 32), new Float32Array(3 * 32 * 32)];
      await data.read(i, a);
      await viaSharp.read(i, b);
      expect(a).toEqual(b);
    }
    for (const [i, why] of [
      [2, 'the JPEG data ends before the image does'],
      [3, 'damaged JPEG data'],
    ] as const) {
      await expect(data.read(i, new Float32Array(3 * 32 * 32))).rejects.toMatchObject({
        code: 'DATA',
        message: expect.stringContaining(`cannot decode image '${data.files[i].file}': ${why}`),
      });
    }
  });

  it('rejects a folder without images and undecodable files with DATA', async () => {
    const empty = tempDir();
    expect(() => new ImageFolderDataset(empty)).toThrow(expect.objectContaining({ code: 'DATA' }));
    const broken = tempDir();
    fs.mkdirSync(path.join(broken, 'a'));
    fs.writeFileSync(path.join(broken, 'a', 'x.jpg'), 'not a jpeg');
    const data = new ImageFolderDataset(broken);
    await expect(data.read(0, new Float32Array(3 * 224 * 224))).rejects.toMatchObject({ code: 'DATA' });
  });
});

describe('reading ahead', () => {
  /** A data set whose reads finish out of order (delays from the index) and fail with DATA for some items. */
  function slowDataset(concurrency: number, bad: Set<number>): Dataset {
    return {
      size: 40,
      itemShape: [2],
      description: 'test items',
      labelled: true,
      concurrency,
      read: (index, target) =>
        new Promise((resolve, reject) =>
          setTimeout(
            () => {
              if (bad.has(index)) return reject(new VbpError('DATA', `item ${index} is damaged`));
              target[0] = index;
              target[1] = -index;
              resolve(index % 10);
            },
            (index * 7) % 5,
          ),
        ),
    };
  }

  it('several reads in flight give the same batches, in data-set order, as one at a time (bad items skipped alike)', async () => {
    const bad = new Set([3, 4, 17, 39]);
    const collect = async (concurrency: number) => {
      const skipped: number[] = [];
      const out = [];
      for await (const b of batches(slowDataset(concurrency, bad), {
        batchSize: 6,
        shuffle: true,
        seed: 3,
        skipBadItems: true,
        onSkip: (i) => skipped.push(i),
      })) {
        out.push({ data: Array.from(b.input.data), labels: Array.from(b.labels), indices: Array.from(b.indices) });
      }
      return { out, skipped };
    };
    const inTurn = await collect(1);
    const ahead = await collect(5);
    expect(ahead).toEqual(inTurn);
    expect(inTurn.skipped.sort((a, b) => a - b)).toEqual([3, 4, 17, 39]);
    expect(inTurn.out.flatMap((b) => b.indices)).toHaveLength(36);
    // Without skipBadItems the first damaged item stops the stream with its DATA error.
    await expect(
      (async () => {
        for await (const b of batches(slowDataset(5, bad), { batchSize: 6 })) void b;
      })(),
    ).rejects.toMatchObject({ code: 'DATA' });
  });

  it('prefetch() requests the next item while the current one is used, and never more than the limit', async () => {
    let pulled = 0;
    const source = (async function* () {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield i;
      }
    })();
    const seen: Array<[number, number]> = [];
    for await (const item of prefetch(source, 4)) {
      await new Promise((resolve) => setImmediate(resolve));
      seen.push([item, pulled]);
    }
    // While item i is in use, item i + 1 has already been pulled (except after the last one allowed).
    expect(seen).toEqual([
      [0, 2],
      [1, 3],
      [2, 4],
      [3, 4],
    ]);
    expect(pulled).toBe(4);
  });
});

describe('no silent wrong normalisation (issue 21, items 20 and 21)', () => {
  const dir = tempDir();
  const normalise = { mean: [0.286], std: [0.353] };
  const pixels = Float32Array.from({ length: 2 * 16 }, (_, i) => (i * 37) % 256);
  beforeAll(() => {
    fs.writeFileSync(path.join(dir, 'f255.npy'), formatNpy({ data: pixels, shape: [2, 1, 4, 4] }));
    fs.writeFileSync(
      path.join(dir, 'fnorm.npy'),
      formatNpy({ data: pixels.map((p) => (p / 255 - 0.286) / 0.353), shape: [2, 1, 4, 4] }),
    );
    fs.writeFileSync(path.join(dir, 'f01.npy'), formatNpy({ data: pixels.map((p) => p / 255), shape: [2, 1, 4, 4] }));
  });

  it('float .npy items outside [0, 1] are refused when a normalisation expects [0, 1], naming the range and the fix', () => {
    expect(() => new NpyDataset(path.join(dir, 'f255.npy'), undefined, { normalise })).toThrow(
      expect.objectContaining({
        code: 'DATA',
        message: expect.stringMatching(
          /holds float32 values from 0 to 2\d\d.*expects pixels scaled to \[0, 1\]: if they are pixels in 0\.\.255, give scale: 255/,
        ),
      }),
    );
    expect(() => new NpyDataset(path.join(dir, 'fnorm.npy'), undefined, { normalise })).toThrow(
      expect.objectContaining({
        code: 'DATA',
        message: expect.stringMatching(
          /values from -0\.81\d* to .*if they are already normalised, give no normalisation/,
        ),
      }),
    );
    // In range, without normalisation, or with an explicit scale: accepted.
    expect(() => new NpyDataset(path.join(dir, 'f01.npy'), undefined, { normalise })).not.toThrow();
    expect(() => new NpyDataset(path.join(dir, 'fnorm.npy'))).not.toThrow();
    expect(() => new NpyDataset(path.join(dir, 'f255.npy'), undefined, { normalise, scale: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('scale: 255 reads float pixels in 0..255 exactly as uint8 pixels', async () => {
    fs.writeFileSync(path.join(dir, 'u8.npy'), formatNpy({ data: Uint8Array.from(pixels), shape: [2, 1, 4, 4] }));
    const [a, b] = [new Float32Array(16), new Float32Array(16)];
    await new NpyDataset(path.join(dir, 'f255.npy'), undefined, { normalise, scale: 255 }).read(1, a);
    await new NpyDataset(path.join(dir, 'u8.npy'), undefined, { normalise }).read(1, b);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(b)).toEqual(Array.from(pixels.subarray(16), (p) => Math.fround((p / 255 - 0.286) / 0.353)));
  });

  it('a normalisation of the wrong length says how many values to give (never "give 1 or 1")', () => {
    fs.writeFileSync(path.join(dir, 'rgb.npy'), formatNpy({ data: new Float32Array(2 * 3 * 4), shape: [2, 3, 2, 2] }));
    const grey = () =>
      new NpyDataset(path.join(dir, 'f01.npy'), undefined, { normalise: { mean: [0.1, 0.2, 0.3], std: [1] } });
    expect(grey).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('mean has 3 values but the items have 1 channel: give one value'),
      }),
    );
    expect(grey).not.toThrow(/give 1 or 1/);
    const rgb = () => new NpyDataset(path.join(dir, 'rgb.npy'), undefined, { normalise: { mean: [0.1], std: [1, 2] } });
    expect(rgb).toThrow(
      expect.objectContaining({
        message: expect.stringContaining(
          'std has 2 values but the items have 3 channels: give one value per channel (3) or one for all',
        ),
      }),
    );
  });

  it('image folders match class names that cannot be folder names by a sanitised name, or by classMap; the error says how', () => {
    const root = tempDir();
    for (const folder of ['T-shirt_top', 'ankle boot', 'Trouser']) {
      fs.mkdirSync(path.join(root, folder));
      fs.writeFileSync(path.join(root, folder, 'x.png'), '');
    }
    const classes = ['T-shirt/top', 'Trouser', 'Ankle boot'];
    const data = new ImageFolderDataset(root, { classes });
    expect(data.files.map((f) => [path.basename(path.dirname(f.file)), f.label])).toEqual([
      ['T-shirt_top', 0],
      ['Trouser', 1],
      ['ankle boot', 2],
    ]);
    fs.mkdirSync(path.join(root, 'tee'));
    fs.writeFileSync(path.join(root, 'tee', 'y.png'), '');
    expect(() => new ImageFolderDataset(root, { classes })).toThrow(
      expect.objectContaining({
        code: 'DATA',
        message: expect.stringMatching(
          /folder\(s\) 'tee' match none of the model's classes .*'T-shirt\/top' matches a folder 't_shirt_top'.*classMap, e\.g\. \{"tee": "T-shirt\/top"\}/,
        ),
      }),
    );
    const mapped = new ImageFolderDataset(root, { classes, classMap: { tee: 'T-shirt/top' } });
    expect(mapped.files.filter((f) => f.file.includes(`${path.sep}tee${path.sep}`)).map((f) => f.label)).toEqual([0]);
    expect(
      new ImageFolderDataset(root, { classes, classMap: { tee: 1 } }).files.find((f) => f.file.includes('tee'))!.label,
    ).toBe(1);
    expect(() => new ImageFolderDataset(root, { classes, classMap: { tee: 'Shirt' } })).toThrow(
      expect.objectContaining({
        code: 'DATA',
        message: expect.stringContaining("classMap: folder 'tee' maps to 'Shirt'"),
      }),
    );
    expect(() => new ImageFolderDataset(root, { classes, classMap: { tee: 3 } })).toThrow(
      expect.objectContaining({ code: 'DATA', message: expect.stringContaining('outside 0..2') }),
    );
    // Two classes that sanitise alike need the exact name.
    expect(
      () =>
        new ImageFolderDataset(root, {
          classes: ['T-shirt/top', 'T-shirt top', 'Trouser', 'Ankle boot'],
          classMap: { tee: 0 },
        }),
    ).toThrow(expect.objectContaining({ message: expect.stringContaining("'T-shirt_top'") }));
    // Without a class list the map places folders at class indices; the others keep torchvision's order.
    const free = new ImageFolderDataset(root, { classMap: { tee: 0, 'T-shirt_top': 0 } });
    expect(free.classes[0]).toBe('T-shirt_top+tee');
  });
});
