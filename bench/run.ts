/**
 * torch-vbp benchmarks (`npm run bench`, `npm run bench -- --quick`). Every comparison is made within one
 * run, on the same LibTorch and thread count, from medians of repeated runs after warm-up. Writes
 * bench/results.json and the table between the bench markers of README.md.
 *
 * Sections: forward latency (addon vs Python), statistics overhead, the whole job (Node vs Python),
 * pruned speed-up against the MAC ratio, plan/slice/save times, fine-tuning step time (Node vs Python eager),
 * memory (calibration vs inference, and growth over a long calibration and over a fine-tuning epoch).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  loadModel,
  gatherStats,
  plan,
  prune,
  setNumThreads,
  keepLargeAllocations,
  versionInfo,
  StatsCollector,
  planCompensated,
  type CollectorOptions,
  type Model,
  type Tensor,
} from '../lib';
import { measureLatency } from '../lib/measure/latency';
import { probeInput } from '../lib/model/model';
import { packageRoot } from '../lib/util/package-root';
import { IdxDataset, DEBIAN_FASHION_MNIST } from '../lib/data/idx-dataset';
import { batches as datasetBatches } from '../lib/data/dataset';
import { readModelCard } from '../lib/formats/model-card';
import { formatNpy } from '../lib/formats/npy';
import { BUNDLED_MODEL } from '../lib/demo/run';
import { flag, median, randomBatches, replaceReadmeSection, BUNDLED_CONFIG } from './util';
import { PythonTimer } from './python-timer';
import { finetuneStepVsPython, type StepComparison } from './finetune-step';

const quick = process.argv.includes('--quick');
const threads = Number(flag('--threads', '1'));
const python = process.env.VBP_PYTHON ?? '/usr/bin/python3';
const PYTHON = python;
const work = path.join(packageRoot, 'bench', 'work');
const resultsFile = path.join(packageRoot, 'bench', 'results.json');
const big = quick ? 'deit_tiny' : 'deit_base';
const bigLabel = quick ? 'DeiT-Tiny shape (224 px, random weights)' : 'DeiT-Base shape (224 px, random weights)';
const IMAGE = [3, 224, 224];

// ---------------------------------------------------------------------------------------------- results

/** forward() in fresh processes with no allocator call, against plain Python (bench/fresh-forward.ts). */
interface FreshForwardRow {
  batch: number;
  allocator: 'cache' | 'default';
  processes: number;
  runs: number;
  ratios: number[];
  nodeMs: number[];
  pythonMs: number[];
  worst: number;
  spread: number;
}

interface ForwardRow {
  model: string;
  batch: number;
  nodeMs: number;
  nodeSyncMs: number;
  pythonMs: number;
  ratio: number;
  syncRatio: number;
  runs: number;
}

/** A calibration pass against a plain forward over the same batches. */
interface Overhead {
  batches: number;
  batchShape: number[];
  forwardMs: number;
  calibrationMs: number;
  ratio: number;
}

interface LeastSquaresRow {
  model: string;
  blocks: number;
  pruneMeanMs: number;
  pruneLsqMs: number;
  solveMs: number;
  planCompensatedMs: number;
  covarianceMb: number;
}

interface PruneTimesRow {
  model: string;
  planMs: number;
  pruneMs: number;
  saveMs: number;
  savedMb: number;
  writeMs: number;
  diskMbPerSecond: number;
}

interface SpeedupRow {
  ratio: number;
  macsBefore: number;
  macsAfter: number;
  macRatio: number;
  /** By batch size ('b1', 'b8'). */
  latency: Record<string, { originalMs: number; prunedMs: number; speedup: number; ofMacRatio: number }>;
}

interface SpeedupSet {
  model: string;
  batchSizes: number[];
  rows: SpeedupRow[];
}

interface FinetuneStepRow {
  model: string;
  batch: number;
  withTeacher: StepComparison;
  withoutTeacher: StepComparison;
}

/** Seconds per phase of the whole job (bench/job.ts, bench/python/job.py); `floor`: load + plain forwards + save. */
type JobSeconds = Record<string, number> & { total: number; floor: number };

interface JobRow {
  model: string;
  threads: number;
  batches: number;
  batchSize: number;
  node: JobSeconds;
  cliSeconds: number;
  python: JobSeconds;
  ratio: number;
  cliRatio: number;
  ofFloor: number;
}

interface MemoryRows {
  peak: { model: string; batches: number; batchSize: number; forwardMb: number; calibrateMb: number; ratio: number };
  growth: { model: string; batches: number; batchSize: number; samplesMb: number[]; growthMb: number };
  finetune: { model: string; steps: number; batchSize: number; samplesMb: number[]; growthMb: number };
}

/** bench/results.json. */
interface BenchResults {
  quick: boolean;
  machine: { cpu: string; cores: number; threads: number; torch: string; cuda: boolean; node: string; date: string };
  freshForward: { model: string; rows: FreshForwardRow[] };
  forward: ForwardRow[];
  statsOverhead: Overhead & { model: string };
  covarianceOverhead: Array<Overhead & { model: string; product: 'float64' | 'float32' }>;
  leastSquares: LeastSquaresRow;
  pruneTimes: PruneTimesRow;
  speedup: SpeedupSet[];
  finetuneStep: FinetuneStepRow[];
  job: JobRow[];
  memory: MemoryRows;
  elapsedSeconds: number;
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// Both sides keep large freed blocks in glibc's allocator (Node: keepLargeAllocations(), Python: the same
// settings as glibc tunables), so that comparisons measure the code, not page faults.
const KEEP_BYTES = 64 * 2 ** 20;
const PYTHON_ENV = {
  OPENBLAS_NUM_THREADS: String(threads),
  OMP_NUM_THREADS: String(threads),
  GLIBC_TUNABLES: `glibc.malloc.mmap_threshold=${KEEP_BYTES}:glibc.malloc.trim_threshold=${2 * KEEP_BYTES}`,
};

function runPython(script: string, args: string[]): string {
  return execFileSync(python, [path.join(packageRoot, 'bench', 'python', script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...PYTHON_ENV },
    maxBuffer: 64 * 2 ** 20,
  });
}

function runNode(script: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, [path.join(packageRoot, 'dist', 'bench', script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), ...env },
  });
}

function ensureBigModel(): string {
  const file = path.join(work, `${big}.pt`);
  if (!fs.existsSync(file) || !fs.existsSync(path.join(work, `${big}.pth`))) {
    log(`writing the ${bigLabel} model to ${work}`);
    runPython('make_models.py', [work, ...(quick ? ['--small'] : [])]);
  }
  return file;
}

/**
 * Node (async forward, and forwardSync) and Python latency of one model and batch size, interleaved in
 * many short rounds so that both see the same machine: this VM's speed drifts by 10 % over seconds.
 */
async function forwardVsPython(
  model: Model,
  file: string,
  shape: number[],
  batch: number,
  runsPerRound: number,
  rounds: number,
): Promise<Omit<ForwardRow, 'model'>> {
  const input = probeInput([batch, ...shape]);
  const py = new PythonTimer(PYTHON, file, [batch, ...shape], threads, PYTHON_ENV);
  await py.ready();
  for (let i = 0; i < 5; i++) {
    await model.forward(input);
    model.forwardSync(input);
  }
  const nodeAsync: number[] = [];
  const nodeSync: number[] = [];
  const python: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < runsPerRound; i++) {
      let t = performance.now();
      await model.forward(input);
      nodeAsync.push(performance.now() - t);
      t = performance.now();
      model.forwardSync(input);
      nodeSync.push(performance.now() - t);
    }
    python.push(...(await py.time(runsPerRound)));
  }
  py.close();
  const [a, s, p] = [median(nodeAsync), median(nodeSync), median(python)];
  return { batch, nodeMs: a, nodeSyncMs: s, pythonMs: p, ratio: a / p, syncRatio: s / p, runs: rounds * runsPerRound };
}

/**
 * Per-batch time of a calibration pass (with `options`, e.g. covariance) against a plain forward over the same batches.
 */
async function statsOverhead(
  model: Model,
  batches: Tensor[],
  rounds: number,
  options: CollectorOptions = {},
): Promise<Overhead> {
  const collector = await StatsCollector.create(model, options);
  // Warm both: the executor profiles the first runs of a graph before it optimises it, and the allocator
  // settles over the first few forwards.
  for (let i = 0; i < 5; i++) {
    await model.forward(batches[0]);
    await collector.add(batches[0]);
  }
  const plain: number[] = [];
  const tapped: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const b of batches) {
      let t = performance.now();
      await model.forward(b);
      plain.push(performance.now() - t);
      t = performance.now();
      await collector.add(b);
      tapped.push(performance.now() - t);
    }
  }
  collector.dispose();
  return {
    batches: batches.length * rounds,
    batchShape: batches[0].shape,
    forwardMs: median(plain),
    calibrationMs: median(tapped),
    ratio: median(tapped) / median(plain),
  };
}

async function speedups(
  file: string,
  label: string,
  shape: number[],
  calibration: AsyncIterable<{ input: Tensor }> | Tensor[],
  batchSizes: number[],
  runs: Record<number, number>,
): Promise<SpeedupSet> {
  const model = await loadModel(file);
  const stats = await gatherStats(model, calibration);
  const baseline: Record<number, number> = {};
  for (const b of batchSizes)
    baseline[b] = (await measureLatency(model, shape, b, { runs: runs[b], warmup: 2 })).medianMs;
  const rows: SpeedupRow[] = [];
  for (const ratio of [0.2, 0.35, 0.5, 0.55]) {
    const { model: pruned, report } = await prune(model, plan(stats, { ratio }));
    const row: SpeedupRow = {
      ratio,
      macsBefore: report.macs.before,
      macsAfter: report.macs.after,
      macRatio: report.macs.before / report.macs.after,
      latency: {},
    };
    for (const b of batchSizes) {
      const ms = (await measureLatency(pruned, shape, b, { runs: runs[b], warmup: 2 })).medianMs;
      row.latency[`b${b}`] = {
        originalMs: baseline[b],
        prunedMs: ms,
        speedup: baseline[b] / ms,
        ofMacRatio: baseline[b] / ms / row.macRatio,
      };
    }
    rows.push(row);
    pruned.dispose();
    log(
      `  ${label} ${Math.round(ratio * 100)} %: MAC ratio ${row.macRatio.toFixed(3)}, speed-up ${batchSizes.map((b) => row.latency[`b${b}`].speedup.toFixed(3)).join(' / ')}`,
    );
  }
  model.dispose();
  return { model: label, batchSizes, rows };
}

function updateReadme(r: BenchResults): void {
  const f = (x: number, d = 2) => x.toFixed(d);
  const lines = [
    `Measured by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${r.machine.cpu} (${r.machine.cores} cores), ${r.machine.threads} LibTorch/OpenBLAS thread(s), LibTorch ${r.machine.torch} CPU, ${r.machine.date}. Medians of repeated runs after warm-up; each ratio compares numbers of the same run.`,
    '',
    '| measure | torch-vbp | reference | ratio | target |',
    '|---|---|---|---|---|',
    ...r.freshForward.rows.map(
      (x) =>
        `| forward() in ${x.processes} fresh Node processes with no allocator call${x.allocator === 'default' ? " and VBP_CPU_ALLOCATOR=default (LibTorch's own allocator, for comparison)" : ''}, ${r.freshForward.model}, batch ${x.batch} (min of ${x.runs}, alternated with plain Python) | ` +
        `${x.nodeMs.map((v) => f(v, 1)).join(' / ')} ms | ${x.pythonMs.map((v) => f(v, 1)).join(' / ')} ms | ${x.ratios.map((v) => f(v, 3)).join(' / ')} (spread ${f(100 * x.spread, 1)} %) | ${x.allocator === 'cache' ? '<= 1.03 each, spread <= 3 %' : ''} |`,
    ),
    ...r.forward.map(
      (x) =>
        `| forward latency, ${x.model}, batch ${x.batch}: forward() / forwardSync() | ${f(x.nodeMs, 3)} / ${f(x.nodeSyncMs, 3)} ms | ${f(x.pythonMs, 3)} ms (Python, torch.jit.load) | ${f(x.ratio, 3)} / ${f(x.syncRatio, 3)} | <= 1.03 |`,
    ),
    `| calibration pass vs plain forward, ${r.statsOverhead.model}, batch ${r.statsOverhead.batchShape[0]} | ${f(r.statsOverhead.calibrationMs)} ms | ${f(r.statsOverhead.forwardMs)} ms | ${f(r.statsOverhead.ratio, 3)} | <= 1.10 |`,
    ...r.covarianceOverhead.map(
      (c) =>
        `| calibration pass with covariance (${c.product} products) vs plain forward, ${c.model}, batch ${c.batchShape[0]} | ${f(c.calibrationMs)} ms | ${f(c.forwardMs)} ms | ${f(c.ratio, 3)} | <= 1.5 |`,
    ),
    `| least-squares solve, ${r.leastSquares.blocks} blocks of ${r.leastSquares.model} (prune lsq - prune mean); compensated selection at 50 % | ${f(r.leastSquares.solveMs / 1000)} s; ${f(r.leastSquares.planCompensatedMs / 1000, 1)} s | | | <= 5 s (solve) |`,
    ...r.job.flatMap((j) => [
      `| whole job through the API (load, calibrate ${j.batches}x${j.batchSize}, plan, prune, save), ${j.model}, ${j.threads} thread(s) | ${f(j.node.total)} s | ${f(j.python.total)} s (Python reference) | ${f(j.ratio, 3)} | <= 0.85 |`,
      `| the same against the work it cannot avoid (load + one plain forward per batch + save) | ${f(j.node.total)} s | ${f(j.node.floor)} s | ${f(j.ofFloor, 3)} | <= 1.1 |`,
      `| the same as one \`vbp prune\` process (Node start-up and reading the .npy included), ${j.threads} thread(s) | ${f(j.cliSeconds)} s | ${f(j.python.total)} s (Python reference) | ${f(j.cliRatio, 3)} | <= 0.85 |`,
    ]),
    ...r.speedup.flatMap((s) =>
      s.rows.map(
        (row) =>
          `| pruned ${Math.round(row.ratio * 100)} %, ${s.model}: speed-up ${s.batchSizes.map((b) => `b${b} ${f(row.latency[`b${b}`].speedup, 3)}x`).join(', ')} | MAC ratio ${f(row.macRatio, 3)}x | | ${s.batchSizes.map((b) => f(row.latency[`b${b}`].ofMacRatio, 3)).join(' / ')} of MAC ratio | >= 0.9 at 55 % (${bigLabel.split(' (')[0]}) |`,
      ),
    ),
    `| plan / slice (prune) / save, ${r.pruneTimes.model} at 50 % | ${f(r.pruneTimes.planMs, 1)} / ${f(r.pruneTimes.pruneMs, 1)} / ${f(r.pruneTimes.saveMs, 1)} ms | | | prune <= 200 ms |`,
    `| save against writing its ${f(r.pruneTimes.savedMb, 0)} MB twice (disk: ${f(r.pruneTimes.diskMbPerSecond, 0)} MB/s, one buffer, no fsync) | ${f(r.pruneTimes.saveMs, 1)} ms | ${f(2 * r.pruneTimes.writeMs, 1)} ms | ${f(r.pruneTimes.saveMs / (2 * r.pruneTimes.writeMs), 3)} | <= 1 |`,
    `| peak RSS, calibration vs inference, ${r.memory.peak.model} | ${f(r.memory.peak.calibrateMb, 0)} MB | ${f(r.memory.peak.forwardMb, 0)} MB | ${f(r.memory.peak.ratio, 3)} | O(hidden) extra |`,
    `| RSS growth over a ${r.memory.growth.batches}-batch calibration, ${r.memory.growth.model} | ${f(r.memory.growth.growthMb, 1)} MB | | | ~0 |`,
    ...r.finetuneStep.flatMap((x) => [
      `| fine-tuning step with distillation, 50 %-pruned ${x.model}, batch ${x.batch} (teacher forward of the next batch overlapped) | ${f(x.withTeacher.nodeMs, 1)} ms | ${f(x.withTeacher.pythonMs, 1)} ms (PyTorch eager) | ${f(x.withTeacher.ratio, 3)} | <= 1.05 |`,
      `| fine-tuning step, cross-entropy only, 50 %-pruned ${x.model}, batch ${x.batch} | ${f(x.withoutTeacher.nodeMs, 1)} ms | ${f(x.withoutTeacher.pythonMs, 1)} ms (PyTorch eager) | ${f(x.withoutTeacher.ratio, 3)} | <= 1.05 |`,
    ]),
    `| RSS growth over a ${r.memory.finetune.steps}-step fine-tuning epoch, ${r.memory.finetune.model}, batch ${r.memory.finetune.batchSize} | ${f(r.memory.finetune.growthMb, 1)} MB | | | ~0 |`,
  ];
  replaceReadmeSection('bench', lines);
}

// ---------------------------------------------------------------------------------------------- the rows

/**
 * Fresh processes: forward() with no allocator call vs plain Python torch.jit.load, with the addon's cache and without.
 */
function measureFreshForward(bigFile: string): BenchResults['freshForward'] {
  const processes = quick ? 3 : 5;
  const fresh = (batch: number, allocator: 'cache' | 'default'): FreshForwardRow => {
    const runs: Array<{ ratio: number; nodeMs: number; pythonMs: number }> = [];
    for (let i = 0; i < processes; i++) {
      const args = [bigFile, IMAGE.join(','), '--batch', String(batch), '--runs', '15', '--threads', String(threads)];
      runs.push(
        JSON.parse(runNode('fresh-forward.js', args, allocator === 'default' ? { VBP_CPU_ALLOCATOR: 'default' } : {})),
      );
    }
    const values = runs.map((r) => r.ratio);
    return {
      batch,
      allocator,
      processes,
      runs: 15,
      ratios: values,
      nodeMs: runs.map((r) => r.nodeMs),
      pythonMs: runs.map((r) => r.pythonMs),
      worst: Math.max(...values),
      spread: (Math.max(...values) - Math.min(...values)) / median(values),
    };
  };
  // The addon's caching allocator (the default), and LibTorch's own for comparison (VBP_CPU_ALLOCATOR=default).
  const result = { model: big, rows: [fresh(1, 'cache'), fresh(8, 'cache'), fresh(1, 'default'), fresh(8, 'default')] };
  for (const row of result.rows)
    log(`  b${row.batch} ${row.allocator}: ${row.ratios.map((r) => r.toFixed(3)).join(', ')}`);
  return result;
}

async function measureForward(
  bundled: Model,
  bigModel: Model,
  bigFile: string,
  bundledShape: number[],
): Promise<ForwardRow[]> {
  return [
    { model: 'bundled', ...(await forwardVsPython(bundled, BUNDLED_MODEL, bundledShape, 1, 20, quick ? 10 : 40)) },
    { model: 'bundled', ...(await forwardVsPython(bundled, BUNDLED_MODEL, bundledShape, 256, 2, quick ? 5 : 20)) },
    { model: big, ...(await forwardVsPython(bigModel, bigFile, IMAGE, 1, 1, quick ? 4 : 10)) },
  ];
}

async function measureCovarianceOverhead(bigModel: Model): Promise<BenchResults['covarianceOverhead']> {
  const runs = quick ? 1 : 2;
  return [
    {
      model: big,
      product: 'float64',
      ...(await statsOverhead(bigModel, randomBatches(quick ? 2 : 3, quick ? 4 : 8, IMAGE), runs, {
        covariance: true,
      })),
    },
    {
      model: big,
      product: 'float32',
      ...(await statsOverhead(bigModel, randomBatches(quick ? 2 : 3, quick ? 4 : 8, IMAGE), runs, {
        covariance: true,
        covarianceProduct: 'float32',
      })),
    },
  ];
}

/** The least-squares solve (prune lsq less prune mean) and the compensated selection, at 50 %. */
async function measureLeastSquares(bigModel: Model): Promise<LeastSquaresRow> {
  const covStats = await gatherStats(bigModel, randomBatches(2, quick ? 4 : 8, IMAGE), { covariance: true });
  const p = plan(covStats, { ratio: 0.5 });
  const mean: number[] = [];
  const lsq: number[] = [];
  for (let i = 0; i < 2; i++) {
    let t = performance.now();
    (await prune(bigModel, p, { skipMacs: true })).model.dispose();
    mean.push(performance.now() - t);
    t = performance.now();
    (await prune(bigModel, p, { compensation: 'lsq', stats: covStats, skipMacs: true })).model.dispose();
    lsq.push(performance.now() - t);
  }
  const t = performance.now();
  await planCompensated(bigModel, covStats, { ratio: 0.5 });
  const row = {
    model: big,
    blocks: covStats.layers.length,
    pruneMeanMs: median(mean),
    pruneLsqMs: median(lsq),
    solveMs: median(lsq) - median(mean),
    planCompensatedMs: performance.now() - t,
    covarianceMb: covStats.covarianceBytes / 2 ** 20,
  };
  log(
    `  solve ${(row.solveMs / 1000).toFixed(2)} s for ${covStats.layers.length} blocks, compensated selection ${(row.planCompensatedMs / 1000).toFixed(1)} s`,
  );
  return row;
}

/**
 * plan, prune (MACs from the plan: no forward) and save times at 50 %, and the disk's speed for the saved file's bytes.
 */
async function measurePruneTimes(bigModel: Model): Promise<PruneTimesRow> {
  const stats = await gatherStats(bigModel, randomBatches(2, quick ? 4 : 8, IMAGE));
  const planMs: number[] = [];
  const pruneMs: number[] = [];
  const saveMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    const p = plan(stats, { ratio: 0.5 });
    planMs.push(performance.now() - t);
    t = performance.now();
    const { model: pruned } = await prune(bigModel, p); // MACs from the plan: no forward
    pruneMs.push(performance.now() - t);
    t = performance.now();
    await pruned.save(path.join(work, 'pruned.pt'));
    saveMs.push(performance.now() - t);
    pruned.dispose();
  }
  // The disk: writing the saved file's bytes as one buffer (no fsync, like the save), in the same folder.
  const savedBytes = fs.statSync(path.join(work, 'pruned.pt')).size;
  const bytes = Buffer.alloc(savedBytes, 1);
  const writeMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    fs.writeFileSync(path.join(work, 'write-speed.bin'), bytes);
    writeMs.push(performance.now() - t);
  }
  fs.rmSync(path.join(work, 'write-speed.bin'));
  return {
    model: big,
    planMs: median(planMs),
    pruneMs: median(pruneMs),
    saveMs: median(saveMs),
    savedMb: savedBytes / 2 ** 20,
    writeMs: median(writeMs),
    diskMbPerSecond: savedBytes / 2 ** 20 / (median(writeMs) / 1000),
  };
}

async function measureSpeedups(bigFile: string, bundledShape: number[]): Promise<SpeedupSet[]> {
  const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', { normalise: { mean: [0.286], std: [0.353] } });
  return [
    await speedups(bigFile, big, IMAGE, randomBatches(2, quick ? 4 : 8, IMAGE), [1, 8], {
      1: quick ? 5 : 7,
      8: quick ? 3 : 3,
    }),
    await speedups(
      BUNDLED_MODEL,
      'bundled',
      bundledShape,
      datasetBatches(train, { batchSize: 128, limit: 512 }),
      [1, 8],
      { 1: 100, 8: 50 },
    ),
  ];
}

/** A fine-tuning step of 50 %-pruned models, with a teacher and without, against the same step in eager PyTorch. */
async function measureFinetuneSteps(bundledShape: number[]): Promise<FinetuneStepRow[]> {
  const small = quick ? 'deit_tiny' : 'deit_small';
  const smallFile = path.join(work, `${small}.pt`);
  if (!fs.existsSync(smallFile) || !fs.existsSync(path.join(work, `${small}.json`)))
    runPython('make_models.py', [work, '--name', small]);
  const prunedOf = async (file: string, shape: number[], batch: number, out: string): Promise<string> => {
    const m = await loadModel(file);
    const s = await gatherStats(m, randomBatches(2, batch, shape, 3));
    const { model: p } = await prune(m, plan(s, { ratio: 0.5 }), { skipMacs: true });
    await p.save(out);
    await Promise.all([m.dispose(), p.dispose()]);
    return out;
  };
  const env = { ...process.env, ...PYTHON_ENV };
  const settings = [
    {
      label: 'bundled',
      student: await prunedOf(BUNDLED_MODEL, bundledShape, 128, path.join(work, 'bundled-p50.pt')),
      teacher: BUNDLED_MODEL,
      config: BUNDLED_CONFIG,
      itemShape: bundledShape,
      batch: 128,
      steps: quick ? 5 : 10,
      rounds: quick ? 1 : 3,
    },
    {
      label: small,
      student: await prunedOf(smallFile, IMAGE, 4, path.join(work, `${small}-p50.pt`)),
      teacher: smallFile,
      config: JSON.parse(fs.readFileSync(path.join(work, `${small}.json`), 'utf8')),
      itemShape: IMAGE,
      batch: quick ? 8 : 16,
      steps: quick ? 2 : 3,
      rounds: quick ? 1 : 3,
    },
  ];
  const rows: FinetuneStepRow[] = [];
  for (const setting of settings) {
    const comparison = await finetuneStepVsPython({ ...setting, work, python, env });
    log(
      `  ${setting.label} b${setting.batch}: with teacher ${comparison.withTeacher.ratio.toFixed(3)}, without ${comparison.withoutTeacher.ratio.toFixed(3)}`,
    );
    rows.push({ model: setting.label, batch: setting.batch, ...comparison });
  }
  return rows;
}

/** The whole job through the API and as one `vbp prune` process, against the Python reference and its floor. */
function measureJob(bigFile: string): JobRow[] {
  const cells = quick
    ? [{ threads: 1, batches: 2, batchSize: 4 }]
    : [
        { threads: 1, batches: 4, batchSize: 8 },
        { threads: 2, batches: 4, batchSize: 8 },
        { threads: 1, batches: 64, batchSize: 4 },
        { threads: 2, batches: 64, batchSize: 4 },
      ];
  const rows: JobRow[] = [];
  for (const cell of cells) {
    const env = { OPENBLAS_NUM_THREADS: String(cell.threads), OMP_NUM_THREADS: String(cell.threads) };
    const common = [
      '--batches',
      String(cell.batches),
      '--batch-size',
      String(cell.batchSize),
      '--ratio',
      '0.5',
      '--threads',
      String(cell.threads),
    ];
    const api = JSON.parse(runNode('job.js', [bigFile, path.join(work, 'job-node.pt'), ...common], env))
      .seconds as JobSeconds;
    const data = path.join(work, `job-data-${cell.batches}x${cell.batchSize}.npy`);
    if (!fs.existsSync(data)) {
      const parts = randomBatches(cell.batches, cell.batchSize, IMAGE);
      const all = new Float32Array(parts.reduce((n, b) => n + b.data.length, 0));
      parts.reduce((at, b) => (all.set(b.data, at), at + b.data.length), 0);
      fs.writeFileSync(
        data,
        formatNpy({ data: all, shape: [cell.batches * cell.batchSize, ...IMAGE], dtype: 'float32' }),
      );
    }
    const cliStarted = performance.now();
    execFileSync(
      process.execPath,
      [
        path.join(packageRoot, 'bin', 'vbp.js'),
        'prune',
        bigFile,
        '--data',
        data,
        '--raw',
        '--limit',
        String(cell.batches * cell.batchSize),
        '--batch-size',
        String(cell.batchSize),
        '--no-shuffle',
        '--ratio',
        '0.5',
        '--out',
        path.join(work, 'job-cli.pt'),
        '--force',
        '--quiet',
        '--threads',
        String(cell.threads),
      ],
      { env: { ...process.env, ...env } },
    );
    const cli = (performance.now() - cliStarted) / 1000;
    const py = JSON.parse(
      execFileSync(
        python,
        [
          path.join(packageRoot, 'bench', 'python', 'job.py'),
          path.join(work, `${big}.pth`),
          big,
          path.join(work, 'job-python.pt'),
          ...common,
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, ...PYTHON_ENV, ...env },
        },
      ),
    ).seconds as JobSeconds;
    const row = {
      model: big,
      ...cell,
      node: api,
      cliSeconds: cli,
      python: py,
      ratio: api.total / py.total,
      cliRatio: cli / py.total,
      ofFloor: api.total / api.floor,
    };
    log(
      `  ${cell.batches}x${cell.batchSize}, ${cell.threads} thread(s): API ${api.total.toFixed(2)} s (${row.ratio.toFixed(3)} of Python, ${row.ofFloor.toFixed(3)} of the floor), vbp prune ${cli.toFixed(2)} s (${row.cliRatio.toFixed(3)})`,
    );
    rows.push(row);
  }
  return rows;
}

/**
 * Peak RSS of calibration against inference, and RSS growth over a long calibration and over a fine-tuning epoch
 * (bench/memory.ts).
 */
function measureMemory(bigFile: string, bundledShape: number[]): MemoryRows {
  const memory = (
    mode: string,
    file: string,
    shape: number[],
    batchesN: number,
    size: number,
    every: number,
  ): { peakRssMb: number; rssSamplesMb: number[] } =>
    JSON.parse(
      runNode('memory.js', [
        mode,
        file,
        shape.join(','),
        '--batches',
        String(batchesN),
        '--batch-size',
        String(size),
        '--sample-every',
        String(every),
        '--threads',
        String(threads),
      ]),
    );
  const peakBatches = quick ? 4 : 6;
  const batchSize = quick ? 4 : 8;
  const forwardPeak = memory('forward', bigFile, IMAGE, peakBatches, batchSize, 1);
  const calibratePeak = memory('calibrate', bigFile, IMAGE, peakBatches, batchSize, 1);
  const longRun = quick ? 200 : 1000;
  const growth = memory('calibrate', BUNDLED_MODEL, bundledShape, longRun, 32, longRun / 10);
  const samples = growth.rssSamplesMb;
  const epochSteps = quick ? 100 : 469;
  const tuning = memory('finetune', BUNDLED_MODEL, bundledShape, epochSteps, 128, Math.round(epochSteps / 10));
  const tuneSamples = tuning.rssSamplesMb;
  return {
    peak: {
      model: big,
      batches: peakBatches,
      batchSize,
      forwardMb: forwardPeak.peakRssMb,
      calibrateMb: calibratePeak.peakRssMb,
      ratio: calibratePeak.peakRssMb / forwardPeak.peakRssMb,
    },
    growth: {
      model: 'bundled',
      batches: longRun,
      batchSize: 32,
      samplesMb: samples,
      growthMb: samples[samples.length - 1] - samples[1],
    },
    finetune: {
      model: 'bundled',
      steps: epochSteps,
      batchSize: 128,
      samplesMb: tuneSamples,
      growthMb: tuneSamples[tuneSamples.length - 1] - tuneSamples[1],
    },
  };
}

async function main(): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  setNumThreads(threads);
  keepLargeAllocations(KEEP_BYTES);
  const started = performance.now();
  const info = versionInfo();
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    threads,
    torch: info.torch,
    cuda: info.cuda,
    node: process.version,
    date: new Date().toISOString().slice(0, 10),
  };
  const bigFile = ensureBigModel();
  const bundledShape = readModelCard(BUNDLED_MODEL)?.inputShape ?? [1, 28, 28];

  log('fresh processes: forward() with no allocator call vs plain Python torch.jit.load');
  const freshForward = measureFreshForward(bigFile);
  log('forward latency: addon vs Python');
  const bundled = await loadModel(BUNDLED_MODEL);
  const bigModel = await loadModel(bigFile);
  const forward = await measureForward(bundled, bigModel, bigFile, bundledShape);
  log('statistics overhead');
  const statsOverheadRow = {
    model: big,
    ...(await statsOverhead(bigModel, randomBatches(quick ? 3 : 4, quick ? 4 : 8, IMAGE), quick ? 1 : 2)),
  };
  log('least squares: covariance pass, solve, compensated selection');
  const covarianceOverhead = await measureCovarianceOverhead(bigModel);
  const leastSquares = await measureLeastSquares(bigModel);
  log('plan / slice / save times');
  const pruneTimes = await measurePruneTimes(bigModel);
  bigModel.dispose();
  log('pruned speed-up against the MAC ratio');
  const speedup = await measureSpeedups(bigFile, bundledShape);
  bundled.dispose();
  log('fine-tuning step: Node vs Python eager');
  const finetuneStep = await measureFinetuneSteps(bundledShape);
  log('whole job: Node (API and `vbp prune`) vs Python, and against the work it cannot avoid');
  const job = measureJob(bigFile);
  log('memory: calibration vs inference, and growth over a long calibration');
  const memory = measureMemory(bigFile, bundledShape);
  const results: BenchResults = {
    quick,
    machine,
    freshForward,
    forward,
    statsOverhead: statsOverheadRow,
    covarianceOverhead,
    leastSquares,
    pruneTimes,
    speedup,
    finetuneStep,
    job,
    memory,
    elapsedSeconds: (performance.now() - started) / 1000,
  };
  fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  updateReadme(results);
  log(`done in ${results.elapsedSeconds.toFixed(0)} s: ${resultsFile}`);
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.code ?? ''} ${error.stack ?? error.message}\n`);
  process.exit(1);
});
