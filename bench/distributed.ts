/**
 * Data-parallel scaling on the bundled model (`npm run bench:distributed [-- --quick]`, about 4 minutes on 2 cores,
 * 2 with --quick; writes bench/distributed-results.json and the table between the distributed markers of README.md).
 *
 * - Fine-tuning: the README's recipe (AdamW lr 1e-4, alpha 0.5, T 2, cosine) from the VBP 90 % model, global batch
 *   128, through `vbp finetune` on 1 rank and under `vbp launch` on 2 ranks (64 per rank), against PyTorch eager on
 *   1 process and DistributedDataParallel (gloo) on 2 (bench/python/ddp_fmnist.py), 1 intra-op thread per process.
 *   Images/s over the training loop (our report's totalMs; the Python loop between barriers), and our time in
 *   collectives per step.
 * - Calibration: gatherStats() on 1 and 2 ranks (bench/distributed-rank.ts) against PyTorch's streaming
 *   statistics with forward hooks on 1 and 2 processes, batches of 128 per process.
 * - Accuracy (not with --quick): one epoch of the recipe on 1 rank and on 2 ranks, top-1 on the 10,000 test images.
 *
 * The variants of a section alternate within each repeat (rotated per repeat); medians of the repeats.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { DEBIAN_FASHION_MNIST, IdxDataset, batches, gatherStats, loadModel, prune, setNumThreads } from '../lib';
import { planPruning } from '../lib/pruning/planning';
import { rankEnvironment } from '../lib/cli/commands/launch';
import { packageRoot } from '../lib/util/package-root';
import { BUNDLED_MODEL } from '../lib/demo/run';
import { median, replaceReadmeSection, BUNDLED_CONFIG } from './util';
import { freePort } from '../lib/util/free-port';

const quick = process.argv.includes('--quick');
const REPEATS = quick ? 1 : 3;
const FINETUNE_ITEMS = quick ? 2560 : 7680; // 20 or 60 steps of the global batch
const STATS_ITEMS = quick ? 4096 : 16384;
const GLOBAL_BATCH = 128;
const STATS_BATCH = 128;
const python = process.env.VBP_PYTHON ?? '/usr/bin/python3';
const vbpCli = path.join(packageRoot, 'bin', 'vbp.js');
const work = path.join(packageRoot, 'bench', 'work');
const resultsFile = path.join(packageRoot, 'bench', 'distributed-results.json');
const run = promisify(execFile);

function log(message: string): void {
  process.stderr.write(`[distributed ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

interface Measurement {
  imagesPerSecond: number;
  /** Ours, on 2 ranks: time in collectives per step, and its share of the training loop. */
  communicationMsPerStep?: number;
  communicationShare?: number;
  medianStepMs?: number;
}

const environment = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };

/** `vbp finetune` (world 1) or `vbp launch -- finetune` (world 2) with the recipe; its JSON report. */
async function oursFinetune(student: string, world: number, items?: number, out?: string) {
  const args = [
    'finetune',
    student,
    '--teacher',
    BUNDLED_MODEL,
    '--data',
    'fashion-mnist',
    '--batch-size',
    String(GLOBAL_BATCH / world),
    ...(items ? ['--limit', String(items)] : []),
    '--lr',
    '1e-4',
    '--threads',
    '1',
    '--json',
    '--out',
    out ?? path.join(work, `distributed-tuned-${world}.pt`),
    '--force',
  ];
  const launch =
    world > 1 ? ['launch', '--nproc-per-node', String(world), '--master-port', String(await freePort()), '--'] : [];
  const { stdout } = await run(process.execPath, [vbpCli, ...launch, ...args], {
    env: environment,
    maxBuffer: 64 * 2 ** 20,
  });
  return JSON.parse(stdout) as {
    report: {
      steps: number;
      items: number;
      timings: { totalMs: number; medianStepMs: number; communicationMs?: number };
    };
  };
}

async function oursFinetuneRate(student: string, world: number): Promise<Measurement> {
  const { report } = await oursFinetune(student, world, FINETUNE_ITEMS);
  const { totalMs, medianStepMs, communicationMs } = report.timings;
  return {
    imagesPerSecond: report.items / (totalMs / 1000),
    medianStepMs,
    ...(communicationMs !== undefined
      ? { communicationMsPerStep: communicationMs / report.steps, communicationShare: communicationMs / totalMs }
      : {}),
  };
}

/** The bundled model's normalisation (its card), for the Python side. */
let normalisation = { mean: 0, std: 1 };

async function pytorch(task: 'finetune' | 'stats', student: string, world: number): Promise<Measurement> {
  const { stdout } = await run(
    python,
    [
      path.join(packageRoot, 'bench', 'python', 'ddp_fmnist.py'),
      task,
      student,
      BUNDLED_MODEL,
      JSON.stringify(BUNDLED_CONFIG),
      DEBIAN_FASHION_MNIST,
      String(normalisation.mean),
      String(normalisation.std),
      '--world-size',
      String(world),
      '--port',
      String(await freePort()),
      '--batch',
      String(task === 'finetune' ? GLOBAL_BATCH : STATS_BATCH),
      '--limit',
      String(task === 'finetune' ? FINETUNE_ITEMS : STATS_ITEMS),
    ],
    { env: environment },
  );
  return { imagesPerSecond: (JSON.parse(stdout.trim().split('\n').pop()!) as Measurement).imagesPerSecond };
}

/** bench/distributed-rank.ts on `world` ranks (torchrun's variables, as vbp launch sets them); rank 0's line. */
async function oursStats(world: number): Promise<Measurement> {
  const script = path.join(packageRoot, 'dist', 'bench', 'distributed-rank.js');
  const port = await freePort();
  const ranks = Array.from({ length: world }, (_, local) => {
    const env = { ...environment, ...(world > 1 ? rankEnvironment(local, world, 1, 0, '127.0.0.1', port) : {}) };
    const child = spawn(process.execPath, [script, String(STATS_ITEMS), String(STATS_BATCH)], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    return new Promise<string>((resolve, reject) =>
      child.on('close', (code) =>
        code === 0 ? resolve(stdout) : reject(new Error(`rank ${local} exited with ${code}: ${stderr}`)),
      ),
    );
  });
  const outputs = await Promise.all(ranks);
  return { imagesPerSecond: (JSON.parse(outputs[0].trim()) as Measurement).imagesPerSecond };
}

type Variant = 'ours-1' | 'ours-2' | 'pytorch-1' | 'pytorch-2';
const VARIANTS: Variant[] = ['ours-1', 'ours-2', 'pytorch-1', 'pytorch-2'];

/** Every variant once per repeat, the order rotated by the repeat; per variant the repeat with the median rate. */
async function alternate(
  section: string,
  measure: (variant: Variant) => Promise<Measurement>,
): Promise<Record<Variant, Measurement & { runs: number[] }>> {
  const runs = Object.fromEntries(VARIANTS.map((v) => [v, [] as Measurement[]])) as Record<Variant, Measurement[]>;
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const variant = VARIANTS[(k + repeat) % VARIANTS.length];
      const m = await measure(variant);
      runs[variant].push(m);
      log(`${section} ${variant}: ${m.imagesPerSecond.toFixed(0)} images/s`);
    }
  }
  return Object.fromEntries(
    VARIANTS.map((v) => {
      const rates = runs[v].map((m) => m.imagesPerSecond);
      const middle = median(rates);
      const chosen = runs[v].find((m) => m.imagesPerSecond === middle) ?? runs[v][0];
      return [v, { ...chosen, imagesPerSecond: middle, runs: rates }];
    }),
  ) as Record<Variant, Measurement & { runs: number[] }>;
}

async function top1(model: string): Promise<number> {
  const { stdout } = await run(
    process.execPath,
    [vbpCli, 'eval', model, '--data', 'fashion-mnist', '--split', 'test', '--threads', '1', '--json'],
    { env: environment, maxBuffer: 64 * 2 ** 20 },
  );
  return (JSON.parse(stdout) as { top1: number }).top1;
}

/** The VBP 90 % model of the README's fine-tuning table: 2,048 calibration images, variance ranking, mean shift. */
async function prepareStudent(): Promise<string> {
  setNumThreads(1);
  const teacher = await loadModel(BUNDLED_MODEL);
  const { mean, std } = teacher.card as { mean: number[]; std: number[] };
  normalisation = { mean: mean[0], std: std[0] };
  const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', { normalise: { mean, std } });
  const stats = await gatherStats(teacher, batches(train, { batchSize: 128, shuffle: true, seed: 0, limit: 2048 }));
  const { model } = await prune(teacher, await planPruning(teacher, stats, { ratio: 0.9, criterion: 'variance' }));
  const file = path.join(work, 'distributed-vbp90.pt');
  await model.save(file);
  await Promise.all([model.dispose(), teacher.dispose()]);
  return file;
}

interface Results {
  date: string;
  quick: boolean;
  repeats: number;
  finetune: { items: number; globalBatch: number } & Record<Variant, Measurement & { runs: number[] }>;
  stats: { items: number; batchPerProcess: number } & Record<Variant, Measurement & { runs: number[] }>;
  accuracy?: { oneRank: number; twoRanks: number; oneRankSeconds: number; twoRanksSeconds: number; steps: number };
}

function updateReadme(r: Results): void {
  if (r.quick) return;
  const rate = (m: Measurement) => m.imagesPerSecond.toFixed(0);
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  const row = (what: string, s: Results['finetune'] | Results['stats']) =>
    `| ${what} | ${rate(s['ours-1'])} | ${rate(s['ours-2'])} | **${x(s['ours-2'].imagesPerSecond, s['ours-1'].imagesPerSecond)}** | ` +
    `${rate(s['pytorch-1'])} | ${rate(s['pytorch-2'])} | ${x(s['pytorch-2'].imagesPerSecond, s['pytorch-1'].imagesPerSecond)} | ` +
    `**${x(s['ours-2'].imagesPerSecond, s['pytorch-2'].imagesPerSecond)}** |`;
  const comm = r.finetune['ours-2'];
  const lines = [
    `Measured by \`npm run bench:distributed\` (\`bench/distributed-results.json\`, ${r.date}, 2 cores, 1 LibTorch thread per ` +
      `process, medians of ${r.repeats} alternating repeats): images/s of the bundled model's VBP 90 % student, ` +
      `fine-tuned with the recipe at a global batch of ${r.finetune.globalBatch} (${r.finetune.items} items; ` +
      `${r.finetune.globalBatch / 2} per rank on 2), and calibrated (${r.stats.items} items, ${r.stats.batchPerProcess} per batch ` +
      'and process); PyTorch 1.13: eager with DistributedDataParallel (gloo) on 2 processes, forward hooks with ' +
      'float64 statistics for calibration.',
    '',
    '| | ours, 1 rank | ours, 2 ranks | scaling | PyTorch, 1 process | PyTorch DDP, 2 | scaling | ours / PyTorch on 2 |',
    '|---|---|---|---|---|---|---|---|',
    row('fine-tuning', r.finetune),
    row('calibration', r.stats),
    '',
    `Our time in collectives on 2 ranks: ${comm.communicationMsPerStep!.toFixed(1)} ms per step, ` +
      `${(100 * comm.communicationShare!).toFixed(1)} % of the training loop (median step ${comm.medianStepMs!.toFixed(0)} ms; ` +
      'it includes waiting for the slower rank).' +
      (r.accuracy
        ? ` One epoch (${r.accuracy.steps} steps) from VBP 90 %: top-1 ${(100 * r.accuracy.oneRank).toFixed(2)} % on 1 rank ` +
          `(${r.accuracy.oneRankSeconds.toFixed(0)} s), ${(100 * r.accuracy.twoRanks).toFixed(2)} % on 2 ranks ` +
          `(${r.accuracy.twoRanksSeconds.toFixed(0)} s).`
        : ''),
  ];
  replaceReadmeSection('distributed', lines);
}

async function main(): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  const student = await prepareStudent();
  log(`student: ${student}`);
  const finetune = await alternate('finetune', (v) => {
    const world = v.endsWith('2') ? 2 : 1;
    return v.startsWith('ours') ? oursFinetuneRate(student, world) : pytorch('finetune', student, world);
  });
  const stats = await alternate('calibration', (v) => {
    const world = v.endsWith('2') ? 2 : 1;
    return v.startsWith('ours') ? oursStats(world) : pytorch('stats', student, world);
  });
  const results: Results = {
    date: new Date().toISOString().slice(0, 10),
    quick,
    repeats: REPEATS,
    finetune: { items: FINETUNE_ITEMS, globalBatch: GLOBAL_BATCH, ...finetune },
    stats: { items: STATS_ITEMS, batchPerProcess: STATS_BATCH, ...stats },
  };
  if (!quick) {
    const epoch = async (world: number) => {
      const out = path.join(work, `distributed-epoch-${world}.pt`);
      const { report } = await oursFinetune(student, world, undefined, out);
      return { top1: await top1(out), seconds: report.timings.totalMs / 1000, steps: report.steps };
    };
    const [one, two] = [await epoch(1), await epoch(2)];
    results.accuracy = {
      oneRank: one.top1,
      twoRanks: two.top1,
      oneRankSeconds: one.seconds,
      twoRanksSeconds: two.seconds,
      steps: one.steps,
    };
    log(`one epoch: ${JSON.stringify(results.accuracy)}`);
  }
  if (!quick) fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  updateReadme(results);
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((error) => {
  process.stderr.write(`distributed bench failed: ${error.code ?? ''} ${error.stack ?? error.message}\n`);
  process.exit(1);
});
