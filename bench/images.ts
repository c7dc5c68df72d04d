/**
 * The data path (`npm run bench:images [-- --quick]`, about 70 s on 2 cores; writes bench/images-results.json
 * and the table between the images markers of README.md): DeiT's evaluation transform (decode, resize 256 bicubic,
 * center crop 224, normalise) over a folder of JPEGs shaped like ImageNet's validation images (500x375), in batches
 * of 64, at 1, 2 and the default number of decode threads against torchvision + PIL with as many DataLoader workers
 * (bench/python/imagefolder.py); the same through sharp alone; the same JPEGs in 4 WebDataset tar shards.
 * The variants alternate within each of 3 rounds; medians.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { batches, type Dataset } from '../lib/data/dataset';
import { ImageFolderDataset, defaultDecodeThreads } from '../lib/data/image-folder';
import { TarShardDataset } from '../lib/data/tar-shards';
import { packageRoot } from '../lib/util/package-root';
import { median, replaceReadmeSection } from './util';

const quick = process.argv.includes('--quick');
const COUNT = quick ? 128 : 512;
const ROUNDS = quick ? 1 : 3;
const python = process.env.VBP_PYTHON ?? '/usr/bin/python3';
const work = path.join(packageRoot, 'bench', 'work');
const resultsFile = path.join(packageRoot, 'bench', 'images-results.json');

function log(message: string): void {
  process.stderr.write(`[images ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** A folder of JPEGs shaped like ImageNet's validation images (500x375, 4 classes), made once with sharp. */
async function imageFolder(count: number): Promise<string> {
  const root = path.join(work, `images-${count}`);
  if (fs.existsSync(path.join(root, '.complete'))) return root;
  const sharp = (await import('sharp')).default;
  for (let i = 0; i < count; i++) {
    const dir = path.join(root, `class${i % 4}`);
    fs.mkdirSync(dir, { recursive: true });
    const pixels = Buffer.alloc(500 * 375 * 3);
    for (let p = 0; p < pixels.length; p++) pixels[p] = (p * 7 + i * 13 + ((p / 1500) | 0) * 3) & 255;
    await sharp(pixels, { raw: { width: 500, height: 375, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(path.join(dir, `${i}.jpg`));
  }
  fs.writeFileSync(path.join(root, '.complete'), '');
  return root;
}

/** The folder's JPEGs as 4 WebDataset shards (<i>.jpg with <i>.cls), written once with tar. */
function tarShards(root: string, count: number): string {
  const out = path.join(work, `shards-${count}`);
  const pattern = path.join(out, 'shard-{0..3}.tar');
  if (fs.existsSync(path.join(out, '.complete'))) return pattern;
  const stage = path.join(out, 'stage');
  fs.mkdirSync(stage, { recursive: true });
  for (let i = 0; i < count; i++) {
    fs.copyFileSync(path.join(root, `class${i % 4}`, `${i}.jpg`), path.join(stage, `${i}.jpg`));
    fs.writeFileSync(path.join(stage, `${i}.cls`), String(i % 4));
  }
  for (let shard = 0; shard < 4; shard++) {
    const members: string[] = [];
    for (let i = (shard * count) / 4; i < ((shard + 1) * count) / 4; i++) members.push(`${i}.jpg`, `${i}.cls`);
    execFileSync('tar', ['-cf', path.join(out, `shard-${shard}.tar`), '-C', stage, ...members]);
  }
  fs.rmSync(stage, { recursive: true });
  fs.writeFileSync(path.join(out, '.complete'), '');
  return pattern;
}

/** Images per second of the second of two passes. */
async function rate(dataset: Dataset): Promise<number> {
  let result = 0;
  for (let pass = 0; pass < 2; pass++) {
    const started = performance.now();
    let images = 0;
    for await (const batch of batches(dataset, { batchSize: 64 })) images += batch.input.shape[0];
    result = images / ((performance.now() - started) / 1000);
  }
  return result;
}

function torchvisionRate(root: string, workers: number): number {
  const out = execFileSync(
    python,
    [path.join(packageRoot, 'bench', 'python', 'imagefolder.py'), root, '--workers', String(workers)],
    { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } },
  );
  return (JSON.parse(out) as { imagesPerSecond: number }).imagesPerSecond;
}

export interface ImagesResults {
  date: string;
  images: number;
  cores: number;
  rounds: number;
  /** Per thread count: ours (the default decoder), torchvision with as many workers, their ratio. */
  threads: Array<{
    threads: number;
    ours: number;
    torchvision: number;
    ratio: number;
    runs: { ours: number[]; torchvision: number[] };
  }>;
  /** Ours from 1 to 2 threads. */
  scaling: number;
  /** sharp for every image (4 per core in flight, as before the native path); the JPEGs in tar shards (2 threads). */
  sharp: number;
  shards: number;
}

function updateReadme(r: ImagesResults): void {
  if (quick) return;
  const f = (x: number) => x.toFixed(0);
  const top = r.threads[r.threads.length - 1];
  const lines = [
    `Measured by \`npm run bench:images\` (\`bench/images-results.json\`, ${r.date}, ${r.cores} cores, medians of ${r.rounds} ` +
      `alternating rounds): ${r.images} JPEGs of 500 x 375, DeiT's evaluation transform (resize 256 bicubic, center crop ` +
      '224, normalise), batches of 64; torchvision 0.14 + PIL 9.4 through a DataLoader with as many workers as we use threads.',
    '',
    '| decode threads | ours (native JPEG path) | torchvision + PIL | ours / torchvision |',
    '|---|---|---|---|',
    ...r.threads.map(
      (t) => `| ${t.threads} | ${f(t.ours)} images/s | ${f(t.torchvision)} images/s | **${t.ratio.toFixed(2)}x** |`,
    ),
    '',
    `From 1 to 2 threads ours scale ${r.scaling.toFixed(2)}x; the last row is the default (two per core). sharp for every ` +
      `image, as before the native path (${4 * r.cores} in flight): ${f(r.sharp)} images/s. The same JPEGs in 4 tar shards ` +
      `at ${(r.threads[1] ?? top).threads} threads: ${f(r.shards)} images/s (${(r.shards / (r.threads[1] ?? top).ours).toFixed(2)}x the folder).`,
  ];
  replaceReadmeSection('images', lines);
}

async function main(): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  const root = await imageFolder(COUNT);
  const shards = tarShards(root, COUNT);
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  // 1 and 2 threads (the comparison), and the default, two per core.
  const counts = [...new Set([1, Math.min(2, cores), defaultDecodeThreads()])];
  const ours = new Map(counts.map((t) => [t, [] as number[]]));
  const theirs = new Map(counts.map((t) => [t, [] as number[]]));
  const sharp: number[] = [];
  const fromShards: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const threads of counts) {
      ours.get(threads)!.push(await rate(new ImageFolderDataset(root, { threads })));
      theirs.get(threads)!.push(torchvisionRate(root, threads));
      log(
        `round ${round} threads ${threads}: ours ${f0(ours.get(threads)!.at(-1)!)}, torchvision ${f0(theirs.get(threads)!.at(-1)!)}`,
      );
    }
    // sharp as it ran before the native path: 4 images per core in flight.
    sharp.push(await rate(new ImageFolderDataset(root, { threads: 4 * cores, decoder: 'sharp' })));
    fromShards.push(await rate(new TarShardDataset(shards, { threads: Math.min(2, cores) })));
    log(`round ${round}: sharp ${f0(sharp.at(-1)!)}, shards ${f0(fromShards.at(-1)!)}`);
  }
  const threads = counts.map((t) => ({
    threads: t,
    ours: median(ours.get(t)!),
    torchvision: median(theirs.get(t)!),
    ratio: median(ours.get(t)!) / median(theirs.get(t)!),
    runs: { ours: ours.get(t)!, torchvision: theirs.get(t)! },
  }));
  const results: ImagesResults = {
    date: new Date().toISOString().slice(0, 10),
    images: COUNT,
    cores,
    rounds: ROUNDS,
    threads,
    scaling: threads.length > 1 ? threads[1].ours / threads[0].ours : 1,
    sharp: median(sharp),
    shards: median(fromShards),
  };
  if (!quick) fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  updateReadme(results);
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

function f0(x: number): string {
  return x.toFixed(0);
}

main().catch((error) => {
  process.stderr.write(`images bench failed: ${error.code ?? ''} ${error.stack ?? error.message}\n`);
  process.exit(1);
});
