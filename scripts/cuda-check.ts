/**
 * The GPU check of issue 10, needing only dist/, the addon, Python with torch, and the fixtures:
 *
 *   node dist/scripts/cuda-check.js --fixtures DIR [--work DIR] [--out FILE.json] [--device cuda|cuda:N|cpu]
 *                                   [--quick] [--python PYTHON] [--sections parity,pipeline,half,throughput]
 *
 * FIXTURES is what test/python/make_fixtures.py writes. Sections (each one recorded even when another fails):
 *  - parity: the fixtures' forward on the device against our CPU forward and against PyTorch's own
 *    torch.jit.load(..., map_location=device) (test/python/device_reference.py), TF32 off on both sides;
 *  - pipeline: statistics (with covariance; and with two replicas on the device, merged), plan, pruning with
 *    mean and least-squares compensation on the device against the CPU path, the device-pruned model saved and
 *    reloaded on the CPU, ours and PyTorch's;
 *  - training: 5 fine-tuning steps with distillation on the device against PyTorch's eager steps on the
 *    same device (test/python/finetune_reference.py --device), TF32 off on both sides;
 *  - half: bfloat16 and float16 models calibrated and pruned on the device (statistics in float64), their
 *    outputs against the float32 path;
 *  - throughput: a DeiT-B-shaped model (DeiT-Tiny with --quick) at batch 64 and 256: forward against
 *    PyTorch on the same device, a calibration pass against plain forwards, the 55 % pruned model's
 *    speed-up against its MAC ratio, fine-tuning steps against PyTorch's eager steps.
 * `--device cpu` runs the same code on the CPU (the test suite does so with --quick, so that the check
 * itself is known to work before a GPU runs it). Writes the report (JSON) and a Markdown table beside it.
 * Exit code: 0 every correctness check passed (speed goals are reported, not enforced), 1 one failed,
 * 2 bad arguments or no such device.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as vbp from '../lib';
import type { Model, Stats, Tensor } from '../lib';
import { PythonTimer } from '../bench/python-timer';
import { finetuneStepVsPython, type StepComparison } from '../bench/finetune-step';
import { median, randomBatches } from '../bench/util';
import { packageRoot } from '../lib/util/package-root';
import { formatNpy } from '../lib/formats/npy';

const FIXTURE_MODELS = ['deit_scripted', 'deit_traced', 'vit_torchvision'];
const SECTIONS = ['parity', 'pipeline', 'training', 'half', 'throughput'] as const;
type Section = (typeof SECTIONS)[number];

/** Tolerances, as a fraction of the largest |value| of the reference. */
const TOLERANCE = {
  samePyTorch: 1e-5, // ours against PyTorch on the same device: the same kernels
  crossDevice: 1e-4, // device against CPU: float32 kernels that sum in another order
  stats: 1e-4, // float64 sums of float32 activations that differ by crossDevice
  replicas: 1e-9, // the same activations summed in two parts and merged: float64 rounding
  training: 1e-4, // losses and weights after 5 steps against PyTorch on the same device (atomics in backward)
};

interface Options {
  fixtures: string;
  work: string;
  out?: string;
  device: string;
  quick: boolean;
  python: string;
  sections: Set<Section>;
}

class UsageError extends Error {}

function parseArguments(argv: string[]): Options {
  const options: Options = {
    fixtures: '',
    work: path.join(os.tmpdir(), 'vbp-cuda-check'),
    device: 'cuda',
    quick: false,
    python: process.env.VBP_PYTHON ?? 'python3',
    sections: new Set(SECTIONS),
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--fixtures') options.fixtures = path.resolve(value());
    else if (flag === '--work') options.work = path.resolve(value());
    else if (flag === '--out') options.out = path.resolve(value());
    else if (flag === '--device') options.device = value();
    else if (flag === '--python') options.python = value();
    else if (flag === '--quick') options.quick = true;
    else if (flag === '--sections') {
      const names = value().split(',');
      const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (unknown.length > 0)
        throw new UsageError(`unknown section ${unknown.join(', ')} (known: ${SECTIONS.join(', ')})`);
      options.sections = new Set(names as Section[]);
    } else throw new UsageError(`unknown option '${argv[i]}'`);
  }
  if (!options.fixtures) throw new UsageError('--fixtures DIR is required (what test/python/make_fixtures.py writes)');
  return options;
}

// ---- numbers ---------------------------------------------------------------------------------------------

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Largest |a - b| and that over the largest |b|. */
function difference(a: ArrayLike<number>, b: ArrayLike<number>): { maxAbs: number; relative: number } {
  if (a.length !== b.length) throw new Error(`outputs differ in length: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return { maxAbs: worst, relative: worst / Math.max(maxAbs(b), 1e-30) };
}

function dataOf(value: vbp.Value): Float32Array {
  return Float32Array.from(vbp.expectTensor(value).data as ArrayLike<number>);
}

async function forwardAll(model: Model, batches: Tensor[]): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (const batch of batches) parts.push(dataOf(await model.forward(batch)));
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Fraction of rows (items) whose largest logit is at the same class. */
function top1Agreement(a: Float32Array, b: Float32Array, classes: number): number {
  let same = 0;
  const rows = a.length / classes;
  const argmax = (x: Float32Array, r: number): number => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (x[r * classes + c] > x[r * classes + best]) best = c;
    return best;
  };
  for (let r = 0; r < rows; r++) if (argmax(a, r) === argmax(b, r)) same++;
  return same / rows;
}

/** Per layer, the largest difference relative to the layer's largest |value|; the worst layer. */
function statsDifference(a: Stats, b: Stats, pick: (s: Stats, layer: number) => ArrayLike<number> | undefined): number {
  let worst = 0;
  for (let i = 0; i < b.layers.length; i++) {
    const x = pick(a, i);
    const y = pick(b, i);
    if (x && y) worst = Math.max(worst, difference(x, y).relative);
  }
  return worst;
}

function selectionOverlap(a: vbp.Plan, b: vbp.Plan): number {
  let shared = 0;
  let total = 0;
  a.layers.forEach((layer, i) => {
    const other = new Set(b.layers[i].pruned);
    total += layer.pruned.length;
    for (const n of layer.pruned) if (other.has(n)) shared++;
  });
  return total === 0 ? 1 : shared / total;
}

function calibration(fixtures: string, batches = 4, size = 16): Tensor[] {
  const calib = vbp.readNpy(path.join(fixtures, 'calib.npy'));
  const per = calib.data.length / calib.shape[0];
  return Array.from({ length: batches }, (_, i) => ({
    data: (calib.data as Float32Array).slice(i * size * per, (i + 1) * size * per),
    shape: [size, ...calib.shape.slice(1)],
  }));
}

function errorText(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}`.split('\n').slice(0, 4).join(' | ');
}

// ---- sections --------------------------------------------------------------------------------------------

interface Context extends Options {
  reference: string;
  failures: string[];
}

function check(ctx: Context, what: string, value: number, limit: number): boolean {
  const ok = Number.isFinite(value) && value <= limit;
  if (!ok) ctx.failures.push(`${what}: ${value} > ${limit}`);
  return ok;
}

async function parity(ctx: Context): Promise<unknown[]> {
  vbp.setAllowTF32({ matmul: false, cudnn: false });
  const input = vbp.readNpy(path.join(ctx.fixtures, 'input_b4.npy'));
  const rows = [];
  try {
    for (const name of FIXTURE_MODELS) {
      const file = path.join(ctx.fixtures, `${name}.pt`);
      const cpu = await vbp.loadModel(file, { device: 'cpu' });
      const device = await vbp.loadModel(file, { device: ctx.device as vbp.Device });
      const ours = dataOf(await device.forward(input));
      const oursCpu = dataOf(await cpu.forward(input));
      const pytorch = vbp.readNpy(path.join(ctx.reference, `${name}_b4.npy`)).data as Float32Array;
      const vsPyTorch = difference(ours, pytorch);
      const vsCpu = difference(ours, oursCpu);
      rows.push({
        model: name,
        vsPyTorchSameDevice: vsPyTorch,
        vsOursOnCpu: vsCpu,
        passed:
          check(ctx, `${name} forward vs PyTorch on ${ctx.device}`, vsPyTorch.relative, TOLERANCE.samePyTorch) &&
          check(ctx, `${name} forward ${ctx.device} vs cpu`, vsCpu.relative, TOLERANCE.crossDevice),
      });
      await Promise.all([cpu.dispose(), device.dispose()]);
    }
  } finally {
    vbp.setAllowTF32({ matmul: false, cudnn: true }); // LibTorch's defaults
  }
  return rows;
}

function pytorchReload(ctx: Context, file: string, input: string): Float32Array {
  const out = path.join(ctx.work, 'pytorch-reload.npy');
  execFileSync(ctx.python, [path.join(packageRoot, 'test', 'python', 'check_saved.py'), file, input, out], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return vbp.readNpy(out).data as Float32Array;
}

async function pipeline(ctx: Context): Promise<unknown[]> {
  const inputFile = path.join(ctx.fixtures, 'input_b4.npy');
  const input = vbp.readNpy(inputFile);
  const batches = calibration(ctx.fixtures);
  const rows = [];
  for (const name of FIXTURE_MODELS) {
    const file = path.join(ctx.fixtures, `${name}.pt`);
    const cpu = await vbp.loadModel(file, { device: 'cpu' });
    const device = await vbp.loadModel(file, { device: ctx.device as vbp.Device });
    const statsCpu = await vbp.gatherStats(cpu, batches, { covariance: true });
    const statsDevice = await vbp.gatherStats(device, batches, { covariance: true });
    const mean = statsDifference(statsDevice, statsCpu, (s, i) => s.layers[i].mean);
    const variance = statsDifference(statsDevice, statsCpu, (s, i) => s.variance(i));
    const covariance = statsDifference(statsDevice, statsCpu, (s, i) => s.layers[i].comoment);
    const planCpu = vbp.plan(statsCpu, { ratio: 0.5 });
    const overlap = selectionOverlap(vbp.plan(statsDevice, { ratio: 0.5 }), planCpu);
    // Two replicas on the device (gatherStats' `devices`), merged with Chan's formula: one pass to float64 rounding.
    const replicas = await vbp.gatherStats(device, batches, { devices: [ctx.device, ctx.device] });
    const replicaMean = statsDifference(replicas, statsDevice, (s, i) => s.layers[i].mean);
    const replicaVariance = statsDifference(replicas, statsDevice, (s, i) => s.variance(i));
    const row: Record<string, unknown> = {
      model: name,
      statsMean: mean,
      statsVariance: variance,
      statsCovariance: covariance,
      selectionOverlapAt50: overlap,
      twoReplicasVsOnePass: { mean: replicaMean, variance: replicaVariance },
    };
    let passed =
      check(ctx, `${name} two replicas vs one pass, mean`, replicaMean, TOLERANCE.replicas) &&
      check(ctx, `${name} two replicas vs one pass, variance`, replicaVariance, TOLERANCE.replicas) &&
      check(ctx, `${name} stats mean`, mean, TOLERANCE.stats) &&
      check(ctx, `${name} stats variance`, variance, TOLERANCE.stats) &&
      check(ctx, `${name} stats covariance`, covariance, TOLERANCE.stats);
    for (const compensation of ['mean', 'lsq'] as const) {
      // The same plan and statistics on both devices: what differs is only where the fold and slice ran.
      const how = compensation === 'lsq' ? { compensation, stats: statsCpu } : { compensation };
      const prunedCpu = await vbp.prune(cpu, planCpu, how);
      const prunedDevice = await vbp.prune(device, planCpu, how);
      const expected = dataOf(await prunedCpu.model.forward(input));
      const onDevice = difference(dataOf(await prunedDevice.model.forward(input)), expected);
      const saved = path.join(ctx.work, `pruned-${name}-${compensation}.pt`);
      await prunedDevice.model.save(saved);
      const reloaded = await vbp.loadModel(saved, { device: 'cpu' });
      const reloadOutput = dataOf(await reloaded.forward(input));
      const reloadOnCpu = difference(reloadOutput, expected);
      const inPyTorch = difference(pytorchReload(ctx, saved, inputFile), reloadOutput);
      row[compensation] = {
        prunedDeviceVsCpu: onDevice,
        savedReloadedOnCpu: reloadOnCpu,
        savedInPyTorchVsOurs: inPyTorch,
      };
      passed =
        check(
          ctx,
          `${name} ${compensation}-pruned forward ${ctx.device} vs cpu`,
          onDevice.relative,
          TOLERANCE.crossDevice,
        ) &&
        check(
          ctx,
          `${name} ${compensation}-pruned, saved on ${ctx.device}, reloaded on cpu`,
          reloadOnCpu.relative,
          TOLERANCE.crossDevice,
        ) &&
        check(
          ctx,
          `${name} ${compensation}-pruned, saved on ${ctx.device}, in PyTorch`,
          inPyTorch.relative,
          TOLERANCE.samePyTorch,
        ) &&
        passed;
      await Promise.all([prunedCpu.model.dispose(), prunedDevice.model.dispose(), reloaded.dispose()]);
    }
    row.passed = passed;
    rows.push(row);
    await Promise.all([cpu.dispose(), device.dispose()]);
  }
  return rows;
}

/** The fine-tuning recipe on the device against PyTorch's eager steps there, from the same 50 % pruned student. */
async function training(ctx: Context): Promise<Record<string, unknown>> {
  const steps = 5;
  const batch = 8;
  const calib = vbp.readNpy(path.join(ctx.fixtures, 'calib.npy'));
  const per = calib.data.length / calib.shape[0];
  const inputs = (calib.data as Float32Array).slice(0, steps * batch * per);
  const labels = Int32Array.from({ length: steps * batch }, (_, i) => (i * 7) % 10);
  const inputsFile = path.join(ctx.work, 'train-inputs.npy');
  const labelsFile = path.join(ctx.work, 'train-labels.npy');
  fs.writeFileSync(
    inputsFile,
    formatNpy({ data: inputs, shape: [steps, batch, ...calib.shape.slice(1)], dtype: 'float32' }),
  );
  fs.writeFileSync(labelsFile, formatNpy({ data: labels, shape: [steps, batch], dtype: 'int32' }));

  const original = path.join(ctx.fixtures, 'deit_scripted.pt');
  const cpu = await vbp.loadModel(original, { device: 'cpu' });
  const student = path.join(ctx.work, 'train-student.pt');
  const pruned = await vbp.prune(cpu, vbp.plan(await vbp.gatherStats(cpu, calibration(ctx.fixtures)), { ratio: 0.5 }));
  await pruned.model.save(student);
  await Promise.all([cpu.dispose(), pruned.model.dispose()]);

  const recipe = { lr: 1e-3, alpha: 0.5, temperature: 2, weightDecay: 0.01, seed: 0 };
  const pythonDir = path.join(packageRoot, 'test', 'python');
  // The fixture's models.DeiT arguments, from where make_fixtures.py takes them.
  const config = execFileSync(
    ctx.python,
    ['-c', 'import json, models; print(json.dumps(models.DEIT_FIXTURE_CONFIG))'],
    { cwd: pythonDir, encoding: 'utf8' },
  ).trim();
  const out = path.join(ctx.work, 'train-reference.json');
  const params = path.join(ctx.work, 'train-reference-params.npy');
  execFileSync(
    ctx.python,
    [
      path.join(pythonDir, 'finetune_reference.py'),
      '--student',
      student,
      '--teacher',
      original,
      '--config',
      config,
      '--inputs',
      inputsFile,
      '--labels',
      labelsFile,
      '--lr',
      String(recipe.lr),
      '--schedule',
      'constant',
      '--alpha',
      String(recipe.alpha),
      '--temperature',
      String(recipe.temperature),
      '--weight-decay',
      String(recipe.weightDecay),
      '--seed',
      String(recipe.seed),
      '--device',
      ctx.device,
      '--no-tf32',
      // As many intra-op threads as ours: a CPU run's sums round by the thread count (MKL), and AdamW carries it.
      '--threads',
      String(vbp.getNumThreads()),
      '--out',
      out,
      '--params',
      params,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const reference = JSON.parse(fs.readFileSync(out, 'utf8')) as {
    loss: number[];
    parameters: Array<{ name: string; offset: number }>;
  };
  const referenceParams = vbp.readNpy(params).data as Float64Array;

  vbp.setAllowTF32({ matmul: false, cudnn: false });
  const studentModel = await vbp.loadModel(student, { device: ctx.device as vbp.Device });
  const teacher = await vbp.loadModel(original, { device: ctx.device as vbp.Device });
  try {
    const data = async function* () {
      for (let s = 0; s < steps; s++) {
        yield {
          input: {
            data: inputs.slice(s * batch * per, (s + 1) * batch * per),
            shape: [batch, ...calib.shape.slice(1)],
          },
          labels: labels.slice(s * batch, (s + 1) * batch),
        };
      }
    };
    const { model, report } = await vbp.finetune(studentModel, {
      teacher,
      data: () => data(),
      stepsPerEpoch: steps,
      batchSize: batch,
      schedule: 'constant',
      ...recipe,
    });
    let lossError = 0;
    report.loss.forEach(
      (loss, i) => (lossError = Math.max(lossError, Math.abs(loss - reference.loss[i]) / Math.abs(reference.loss[i]))),
    );
    let parameterError = 0;
    for (const p of reference.parameters) {
      const ours = (await model.parameter(p.name)).data as Float32Array;
      parameterError = Math.max(
        parameterError,
        difference(ours, referenceParams.subarray(p.offset, p.offset + ours.length)).relative,
      );
    }
    await model.dispose();
    const passed =
      check(ctx, `fine-tuning losses on ${ctx.device} vs PyTorch`, lossError, TOLERANCE.training) &&
      check(ctx, `fine-tuned weights on ${ctx.device} vs PyTorch`, parameterError, TOLERANCE.training);
    return {
      steps,
      batch,
      loss: report.loss,
      pytorchLoss: reference.loss,
      lossRelative: lossError,
      parametersRelative: parameterError,
      mode: report.mode.kind,
      passed,
    };
  } finally {
    vbp.setAllowTF32({ matmul: false, cudnn: true });
    await Promise.all([studentModel.dispose(), teacher.dispose()]);
  }
}

async function halfPrecision(ctx: Context): Promise<unknown[]> {
  const batches = calibration(ctx.fixtures);
  const float32 = await vbp.loadModel(path.join(ctx.fixtures, 'deit_scripted.pt'), {
    device: ctx.device as vbp.Device,
  });
  const stats32 = await vbp.gatherStats(float32, batches);
  const plan32 = vbp.plan(stats32, { ratio: 0.5 });
  const pruned32 = (await vbp.prune(float32, plan32)).model;
  const reference = await forwardAll(float32, batches);
  const prunedReference = await forwardAll(pruned32, batches);
  const classes = reference.length / batches.reduce((n, b) => n + b.shape[0], 0);
  const rows = [];
  for (const [dtype, file] of [
    ['bfloat16', path.join(ctx.fixtures, 'deit_bf16.pt')],
    ['float16', path.join(ctx.reference, 'deit_fp16.pt')],
  ]) {
    try {
      const half = await vbp.loadModel(file, { device: ctx.device as vbp.Device });
      const stats = await vbp.gatherStats(half, batches);
      const plan = vbp.plan(stats, { ratio: 0.5 });
      const pruned = (await vbp.prune(half, plan)).model;
      const fc2 = pruned.parameters().find((p) => p.name.endsWith('mlp.fc2.bias'));
      const output = await forwardAll(half, batches);
      const prunedOutput = await forwardAll(pruned, batches);
      rows.push({
        dtype,
        supported: true,
        statsAreFloat64: stats.layers.every((l) => l.mean instanceof Float64Array),
        prunedParameterDtype: fc2?.dtype,
        selectionOverlapWithFloat32: selectionOverlap(plan, plan32),
        unprunedVsFloat32: {
          ...difference(output, reference),
          top1Agreement: top1Agreement(output, reference, classes),
        },
        prunedVsFloat32Pruned: {
          ...difference(prunedOutput, prunedReference),
          top1Agreement: top1Agreement(prunedOutput, prunedReference, classes),
        },
      });
      if (!stats.layers.every((l) => l.mean instanceof Float64Array))
        ctx.failures.push(`${dtype}: statistics are not float64`);
      if (fc2 && fc2.dtype !== dtype) ctx.failures.push(`${dtype}: the pruned model's fc2 bias is ${fc2.dtype}`);
      await Promise.all([half.dispose(), pruned.dispose()]);
    } catch (error) {
      // CPU LibTorch has no float16 convolution: expected off the GPU, a failure on it.
      rows.push({ dtype, supported: false, error: errorText(error) });
      if (ctx.device !== 'cpu') ctx.failures.push(`${dtype} on ${ctx.device}: ${errorText(error)}`);
    }
  }
  await Promise.all([float32.dispose(), pruned32.dispose()]);
  return rows;
}

async function timeMs(job: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await job();
  return performance.now() - started;
}

async function throughput(ctx: Context): Promise<Record<string, unknown>> {
  const shape = ctx.quick ? 'deit_tiny' : 'deit_base';
  const models = path.join(ctx.work, 'models');
  execFileSync(ctx.python, [path.join(packageRoot, 'bench', 'python', 'make_models.py'), models, '--name', shape], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const file = path.join(models, `${shape}.pt`);
  const config = JSON.parse(fs.readFileSync(path.join(models, `${shape}.json`), 'utf8')) as Record<string, unknown>;
  const itemShape = [3, 224, 224];
  const batchSizes = ctx.quick ? [2, 4] : [64, 256];
  const rounds = ctx.quick ? 2 : 5;
  const runsPerRound = ctx.quick ? 2 : 4;
  const calibrationBatches = ctx.quick ? 2 : 8;
  // Both sides with the same CPU thread count (the host side of a GPU run; everything on a CPU run).
  const threads = Number(process.env.OMP_NUM_THREADS ?? vbp.getNumThreads());
  vbp.setNumThreads(threads);
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  const model = await vbp.loadModel(file, { device: ctx.device as vbp.Device });
  const rows = [];
  let prunedFile = '';
  try {
    for (const batch of batchSizes) {
      const [input] = randomBatches(1, batch, itemShape, 11);
      // 1. Forward against PyTorch on the same device, alternating rounds.
      const timer = new PythonTimer(ctx.python, file, [batch, ...itemShape], threads, env, ctx.device);
      const ours: number[] = [];
      const theirs: number[] = [];
      try {
        await timer.ready();
        for (let i = 0; i < 3; i++) await model.forward(input);
        for (let r = 0; r < rounds; r++) {
          for (let i = 0; i < runsPerRound; i++) ours.push(await timeMs(() => model.forward(input)));
          theirs.push(...(await timer.time(runsPerRound)));
        }
      } finally {
        timer.close();
      }
      // 2. A calibration pass against plain forwards of the same batches, alternating.
      const calib = randomBatches(calibrationBatches, batch, itemShape, 21);
      const plain: number[] = [];
      const calibrating: number[] = [];
      let stats: Stats | undefined;
      for (let r = 0; r < 2; r++) {
        plain.push(
          await timeMs(async () => {
            for (const b of calib) await model.forward(b);
          }),
        );
        calibrating.push(
          await timeMs(async () => {
            stats = await vbp.gatherStats(model, calib);
          }),
        );
      }
      // 3. The 55 % pruned model against the original, alternating pairs.
      const pruned = await vbp.prune(model, vbp.plan(stats as Stats, { ratio: 0.55 }));
      const speed = await vbp.compareLatency(model, pruned.model, itemShape, batch, {
        warmup: 2,
        runs: ctx.quick ? 4 : 20,
      });
      const macRatio = pruned.report.macs.before / pruned.report.macs.after;
      if (!prunedFile) {
        prunedFile = path.join(ctx.work, `${shape}-pruned55.pt`);
        await pruned.model.save(prunedFile);
      }
      await pruned.model.dispose();
      rows.push({
        batch,
        forward: {
          oursMs: median(ours),
          pytorchMs: median(theirs),
          ratio: median(ours) / median(theirs),
          goal: '<= 1.03',
        },
        calibration: {
          forwardsMs: Math.min(...plain),
          calibrationMs: Math.min(...calibrating),
          throughputRatio: Math.min(...plain) / Math.min(...calibrating),
          goal: '>= 0.95',
        },
        pruned55: {
          speedup: speed.speedup,
          low: speed.low,
          high: speed.high,
          macRatio,
          speedupOverMacRatio: speed.speedup / macRatio,
        },
      });
    }
  } finally {
    await model.dispose();
  }
  // 4. Fine-tuning steps: the pruned model as student, the original as teacher.
  let finetune: { withTeacher: StepComparison; withoutTeacher: StepComparison } | { error: string };
  try {
    finetune = await finetuneStepVsPython({
      label: `${shape} ${ctx.device}`,
      student: prunedFile,
      teacher: file,
      config,
      itemShape,
      batch: ctx.quick ? 2 : 64,
      steps: ctx.quick ? 2 : 10,
      rounds: ctx.quick ? 1 : 2,
      work: ctx.work,
      python: ctx.python,
      env,
      device: ctx.device,
    });
  } catch (error) {
    finetune = { error: errorText(error) };
    ctx.failures.push(`fine-tuning steps: ${errorText(error)}`);
  }
  return { model: shape, threads, rows, finetune: { batch: ctx.quick ? 2 : 64, ...finetune } };
}

// ---- report ----------------------------------------------------------------------------------------------

function fixed(x: unknown, digits = 3): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/** A difference: 0, or one significant digit and the exponent. */
function diff(x: unknown): string {
  return typeof x === 'number' && Number.isFinite(x) ? (x === 0 ? '0' : x.toExponential(1)) : '-';
}

/** The README's table of a report. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a report read back from JSON, of any section's shape
export function markdown(report: Record<string, any>): string {
  const lines = [
    `Device: ${report.environment?.pytorch?.device ?? report.device} (torch ${report.environment?.pytorch?.torch ?? '?'}, CUDA ${report.environment?.pytorch?.cuda ?? '-'}, LibTorch of the addon ${report.environment?.addon?.torch ?? '?'})`,
    '',
  ];
  if (Array.isArray(report.parity)) {
    lines.push('| model | ours vs PyTorch, same device (max abs) | device vs CPU (max abs) |', '|---|---|---|');
    for (const r of report.parity)
      lines.push(`| ${r.model} | ${diff(r.vsPyTorchSameDevice?.maxAbs)} | ${diff(r.vsOursOnCpu?.maxAbs)} |`);
    lines.push('');
  }
  if (Array.isArray(report.pipeline)) {
    lines.push(
      '| model | stats mean / var (rel) | mean-pruned device vs CPU | lsq-pruned device vs CPU | saved, in PyTorch vs ours |',
      '|---|---|---|---|---|',
    );
    for (const r of report.pipeline) {
      lines.push(
        `| ${r.model} | ${diff(r.statsMean)} / ${diff(r.statsVariance)} | ${diff(r.mean?.prunedDeviceVsCpu?.maxAbs)} | ${diff(r.lsq?.prunedDeviceVsCpu?.maxAbs)} | ${diff(Math.max(r.mean?.savedInPyTorchVsOurs?.maxAbs ?? NaN, r.lsq?.savedInPyTorchVsOurs?.maxAbs ?? NaN))} |`,
      );
    }
    lines.push('');
  }
  const tr = report.training;
  if (tr?.loss) {
    lines.push(
      `Fine-tuning, ${tr.steps} steps with distillation: losses within ${diff(tr.lossRelative)} and weights within ${diff(tr.parametersRelative)} (relative) of PyTorch's eager steps on the same device.`,
      '',
    );
  }
  if (Array.isArray(report.half)) {
    lines.push(
      '| dtype | pruned half vs pruned float32 (rel max / top-1 agreement) | unpruned half vs float32 |',
      '|---|---|---|',
    );
    for (const r of report.half) {
      lines.push(
        r.supported
          ? `| ${r.dtype} | ${diff(r.prunedVsFloat32Pruned.relative)} / ${fixed(r.prunedVsFloat32Pruned.top1Agreement * 100, 1)} % | ${diff(r.unprunedVsFloat32.relative)} / ${fixed(r.unprunedVsFloat32.top1Agreement * 100, 1)} % |`
          : `| ${r.dtype} | not supported here: ${r.error} | |`,
      );
    }
    lines.push('');
  }
  const t = report.throughput;
  if (t?.rows) {
    lines.push(
      `| ${t.model} | ours ms | PyTorch ms | ratio (goal <= 1.03) | calibration / forward throughput (goal >= 0.95) | 55 % pruned speed-up | MAC ratio |`,
      '|---|---|---|---|---|---|---|',
    );
    for (const r of t.rows) {
      lines.push(
        `| batch ${r.batch} | ${fixed(r.forward.oursMs, 1)} | ${fixed(r.forward.pytorchMs, 1)} | ${fixed(r.forward.ratio)} | ${fixed(r.calibration.throughputRatio)} | ${fixed(r.pruned55.speedup, 2)}x | ${fixed(r.pruned55.macRatio, 2)}x |`,
      );
    }
    const f = t.finetune;
    if (f?.withTeacher) {
      lines.push(
        '',
        `Fine-tuning step, batch ${f.batch}: ${fixed(f.withoutTeacher.nodeMs, 1)} vs ${fixed(f.withoutTeacher.pythonMs, 1)} ms without a teacher (ratio ${fixed(f.withoutTeacher.ratio)}), ${fixed(f.withTeacher.nodeMs, 1)} vs ${fixed(f.withTeacher.pythonMs, 1)} ms with distillation (ratio ${fixed(f.withTeacher.ratio)}).`,
      );
    }
  }
  for (const section of SECTIONS)
    if (report[section]?.error) lines.push(`${section}: failed, ${report[section].error}`);
  return lines.join('\n') + '\n';
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`cuda-check: ${(error as Error).message}`);
    return 2;
  }
  const info = vbp.versionInfo();
  const report: Record<string, unknown> = {
    device: options.device,
    quick: options.quick,
    started: new Date().toISOString(),
  };
  if (options.device !== 'cpu' && !info.cuda) {
    console.error(`cuda-check: this addon's LibTorch ${info.torch} is CPU-only (no '${options.device}')`);
    return 2;
  }
  if (options.device !== 'cpu' && vbp.cudaDeviceCount() === 0) {
    console.error('cuda-check: no CUDA device is visible to LibTorch');
    return 2;
  }
  fs.mkdirSync(options.work, { recursive: true });
  const ctx: Context = { ...options, reference: path.join(options.work, 'reference'), failures: [] };
  const pytorch = JSON.parse(
    execFileSync(
      ctx.python,
      [
        path.join(packageRoot, 'test', 'python', 'device_reference.py'),
        '--fixtures',
        ctx.fixtures,
        '--device',
        ctx.device,
        '--out',
        ctx.reference,
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
      .trim()
      .split('\n')
      .pop() as string,
  ) as Record<string, unknown>;
  report.environment = { node: process.version, addon: info, pytorch, host: os.hostname() };

  const sections: Array<[Section, (c: Context) => Promise<unknown>]> = [
    ['parity', parity],
    ['pipeline', pipeline],
    ['training', training],
    ['half', halfPrecision],
    ['throughput', throughput],
  ];
  for (const [name, run] of sections) {
    if (!ctx.sections.has(name)) continue;
    const started = performance.now();
    try {
      report[name] = await run(ctx);
    } catch (error) {
      report[name] = { error: errorText(error) };
      ctx.failures.push(`${name}: ${errorText(error)}`);
    }
    console.error(`cuda-check: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  report.failures = ctx.failures;
  report.passed = ctx.failures.length === 0;
  const text = JSON.stringify(report, null, 2);
  console.log(text);
  if (options.out) {
    fs.mkdirSync(path.dirname(options.out), { recursive: true });
    fs.writeFileSync(options.out, text + '\n');
    fs.writeFileSync(options.out.replace(/\.json$/, '') + '.md', markdown(report));
  }
  return ctx.failures.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(`cuda-check failed: ${errorText(error)}`);
      process.exit(1);
    },
  );
}
