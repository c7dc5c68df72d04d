/**
 * WebDataset tar shards against Python's tarfile (test/python/tar_reference.py): the members and their offsets, the
 * samples, the pixels (equal to an image folder of the same files), the epoch order, ranks, and damaged shards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ImageFolderDataset, TarShardDataset, batches, expandBraces, listTar, type Batch } from '../../lib';
import { fixture, runPython, tempDir, vbp } from '../helpers';

const dir = tempDir('torch-vbp-tar-');
const pattern = path.join(dir, 'shard-{000000..000002}.tar');
let reference: {
  members: Record<string, Array<[string, number, number]>>;
  samples: Array<[number, string, string, number, string]>;
};

beforeAll(() => {
  reference = JSON.parse(runPython('tar_reference.py', [dir]));
});

async function indicesOf(source: AsyncIterable<Batch>): Promise<number[]> {
  const out: number[] = [];
  for await (const b of source) out.push(...b.indices);
  return out;
}

describe('tar archives', () => {
  it('lists the regular files tarfile lists, at its data offsets: GNU long names, pax names and sizes, ustar', () => {
    for (const [shard, members] of Object.entries(reference.members)) {
      expect(listTar(path.join(dir, shard)).map((m) => [m.name, m.offset, m.size])).toEqual(members);
    }
    // The cases the shards were written to hold.
    expect(
      Object.values(reference.members)
        .flat()
        .some(([name]) => name.length > 100),
    ).toBe(true);
    expect(
      Object.values(reference.members)
        .flat()
        .some(([name]) => /Ü/.test(name)),
    ).toBe(true);
  });

  it('a damaged header or a truncated member is DATA naming the file and the byte', () => {
    const good = fs.readFileSync(path.join(dir, 'shard-000000.tar'));
    const badSum = Buffer.from(good);
    badSum[10] ^= 0xff; // inside the first member's name
    fs.writeFileSync(path.join(dir, 'bad-sum.tar'), badSum);
    expect(() => listTar(path.join(dir, 'bad-sum.tar'))).toThrow(
      expect.objectContaining({
        code: 'DATA',
        message: expect.stringMatching(/bad-sum\.tar.*wrong checksum at byte 0$/),
      }),
    );
    fs.writeFileSync(path.join(dir, 'cut.tar'), good.subarray(0, 700));
    expect(() => listTar(path.join(dir, 'cut.tar'))).toThrow(
      expect.objectContaining({ code: 'DATA', message: expect.stringContaining('ends past the end of the file') }),
    );
  });
});

describe('TarShardDataset', () => {
  it('expands brace patterns as braceexpand: zero-padded ranges, lists, several braces', () => {
    expect(expandBraces('s-{08..11}.tar')).toEqual(['s-08.tar', 's-09.tar', 's-10.tar', 's-11.tar']);
    expect(expandBraces('{a,b}/x{1..2}')).toEqual(['a/x1', 'a/x2', 'b/x1', 'b/x2']);
    expect(() => expandBraces('s-{1..2.tar')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('finds the samples in archive order with their classes; other members and image-less keys are left out', () => {
    const data = new TarShardDataset(pattern, { crop: 32 });
    expect(data.size).toBe(reference.samples.length);
    expect(data.labelled).toBe(true);
    reference.samples.forEach(([shard, key, member, label], i) => {
      expect(data.sample(i)).toEqual({
        shard: path.join(dir, `shard-${String(shard).padStart(6, '0')}.tar`),
        key,
        member,
        label,
      });
    });
  });

  it('reads the pixels an image folder of the same files reads, bit for bit, and the same crop-flip crops', async () => {
    const shards = new TarShardDataset(pattern, { crop: 32 });
    const folder = new ImageFolderDataset(path.join(dir, 'folder'), { crop: 32 });
    const n = 3 * 32 * 32;
    for (let i = 0; i < shards.size; i++) {
      const j = folder.files.findIndex((f) => f.file === reference.samples[i][4]);
      const [a, b] = [new Float32Array(n), new Float32Array(n)];
      expect(await shards.read(i, a)).toBe(await folder.read(j, b));
      expect(a).toEqual(b);
      const random = () => {
        let state = i;
        return () => (state = (state * 48271) % 2147483647) / 2147483647;
      };
      await shards.readAugmented(i, a, random());
      await folder.readAugmented(j, b, random());
      expect(a).toEqual(b);
    }
  });

  it('shuffles as WebDataset: shards in a seeded order, items through the buffer; ranks split it without overlap', async () => {
    const ordered = new TarShardDataset(pattern, { crop: 32, shuffleBuffer: 0 });
    const order = Array.from(ordered.shuffledOrder(3));
    // Without a buffer: whole shards, each in archive order.
    const shardOf = (i: number) => reference.samples[i][0];
    const runs = order.map(shardOf).filter((s, k, all) => k === 0 || all[k - 1] !== s);
    expect(runs.sort()).toEqual([0, 1, 2]);
    for (let k = 1; k < order.length; k++)
      if (shardOf(order[k]) === shardOf(order[k - 1])) expect(order[k]).toBe(order[k - 1] + 1);
    const buffered = new TarShardDataset(pattern, { crop: 32, shuffleBuffer: 4 });
    const a = Array.from(buffered.shuffledOrder(3));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: buffered.size }, (_, i) => i));
    expect(a).toEqual(Array.from(buffered.shuffledOrder(3)));
    expect(a).not.toEqual(Array.from(buffered.shuffledOrder(4)));
    // batches() takes that order; two ranks take every other item of it (the 15 items padded to 16).
    const whole = await indicesOf(batches(buffered, { batchSize: 4, shuffle: true, seed: 3 }));
    expect(whole).toEqual(a);
    const ranks = await Promise.all(
      [0, 1].map((rank) =>
        indicesOf(batches(buffered, { batchSize: 4, shuffle: true, seed: 3, shard: { rank, worldSize: 2 } })),
      ),
    );
    expect(ranks[0]).toEqual(a.filter((_, k) => k % 2 === 0));
    expect(ranks[1]).toEqual([...a.filter((_, k) => k % 2 === 1), a[0]]);
  });

  it('a missing shard is IO naming it; a bad class or an undecodable image is DATA naming the member and the shard', async () => {
    expect(() => new TarShardDataset(path.join(dir, 'shard-{000000..000004}.tar'))).toThrow(
      expect.objectContaining({ code: 'IO', message: expect.stringContaining("2 of 5 tar shard(s) do not exist: '") }),
    );
    runPython('tar_reference.py', ['--bad', dir]);
    expect(() => new TarShardDataset(path.join(dir, 'bad-class.tar'))).toThrow(
      expect.objectContaining({
        code: 'DATA',
        message: expect.stringContaining(`'k1.cls' holds "two", expected a class index`),
      }),
    );
    const data = new TarShardDataset(path.join(dir, 'bad-image.tar'), { crop: 16 });
    await expect(data.read(0, new Float32Array(3 * 16 * 16))).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringContaining(`cannot decode image 'k1.jpg' in '${path.join(dir, 'bad-image.tar')}'`),
    });
    // --skip-bad-images' path: the bad one skipped and reported, the good one read.
    const skipped: number[] = [];
    const read = await indicesOf(batches(data, { batchSize: 2, skipBadItems: true, onSkip: (i) => skipped.push(i) }));
    expect({ read, skipped }).toEqual({ read: [1], skipped: [0] });
  });
});

describe('vbp with --data SHARDS', () => {
  it('vbp eval reads a brace pattern as it reads the image folder of the same files', () => {
    const common = [
      fixture('deit_scripted.pt'),
      '--crop',
      '32',
      '--mean',
      '0.5,0.5,0.5',
      '--std',
      '0.25,0.25,0.25',
      '--json',
    ];
    const shards = vbp(['eval', '--data', pattern, ...common]);
    const folder = vbp(['eval', '--data', path.join(dir, 'folder'), ...common]);
    expect({ status: shards.status, stderr: shards.stderr }).toEqual({ status: 0, stderr: '' });
    const pick = (text: string) => {
      const r = JSON.parse(text) as { items: number; correct1: number };
      return { items: r.items, correct1: r.correct1 };
    };
    expect(pick(shards.stdout)).toEqual(pick(folder.stdout));
    expect(pick(shards.stdout).items).toBe(15);
    // stats and finetune read them alike (shuffled through the buffer).
    const stats = vbp([
      'stats',
      '--data',
      pattern,
      ...common,
      '--limit',
      '15',
      '--out',
      path.join(dir, 's.safetensors'),
    ]);
    expect({ status: stats.status, stderr: stats.stderr }).toEqual({ status: 0, stderr: '' });
    expect((JSON.parse(stats.stdout) as { info: { items: number } }).info.items).toBe(15);
    const tuned = vbp([
      'finetune',
      '--data',
      pattern,
      ...common,
      '--batch-size',
      '4',
      '--train-transform',
      'crop-flip',
      '--out',
      path.join(dir, 'tuned.pt'),
    ]);
    expect({ status: tuned.status, stderr: tuned.stderr }).toEqual({ status: 0, stderr: '' });
    expect((JSON.parse(tuned.stdout) as { report: { items: number } }).report.items).toBe(15);
    const missing = vbp(['eval', '--data', path.join(dir, 'none-{0..1}.tar'), ...common]);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('tar shard(s) do not exist');
  }, 60_000);
});
