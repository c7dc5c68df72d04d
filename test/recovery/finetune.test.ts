/**
 * Fine-tuning (lib/recovery/): step-exact against an eager PyTorch run of the same recipe
 * (test/python/finetune_reference.py), save and reload in PyTorch, faults, abort, checkpoint and resume,
 * train/eval handling of traced graphs. vbp finetune is in test/cli/finetune.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  FinetuneError,
  finetune,
  gatherStats,
  loadModel,
  nativeMemory,
  plan,
  prune,
  readNpy,
  type FinetuneOptions,
  type Model,
  type Tensor,
} from '../../lib';
import { formatNpy } from '../../lib/formats/npy';
import {
  asTensor,
  calibrationBatches,
  codeOf,
  fixture,
  FIXTURE_CONFIG,
  maxAbsDiff,
  python,
  readPythonOutput,
  runPython,
  tempDir,
} from '../helpers';

const dir = tempDir();
const BATCH = 8;
const ITEM = 3 * 32 * 32;

/** Deterministic batches with a spread of labels (a linear congruential generator, no Math.random). */
function makeBatches(steps: number, seed: number): Array<{ input: Tensor<Float32Array>; labels: Int32Array }> {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: steps }, () => ({
    input: {
      data: Float32Array.from({ length: BATCH * ITEM }, () => next() * 2 - 1),
      shape: [BATCH, 3, 32, 32],
      dtype: 'float32' as const,
    },
    labels: Int32Array.from({ length: BATCH }, () => Math.floor(next() * 10)),
  }));
}

function writeBatches(batches: ReturnType<typeof makeBatches>, name: string): { inputs: string; labels: string } {
  const inputs = path.join(dir, `${name}-inputs.npy`);
  const labels = path.join(dir, `${name}-labels.npy`);
  const data = new Float32Array(batches.length * BATCH * ITEM);
  batches.forEach((b, i) => data.set(b.input.data, i * BATCH * ITEM));
  fs.writeFileSync(inputs, formatNpy({ data, shape: [batches.length, BATCH, 3, 32, 32], dtype: 'float32' }));
  const labelData = new Int32Array(batches.length * BATCH);
  batches.forEach((b, i) => labelData.set(b.labels, i * BATCH));
  fs.writeFileSync(labels, formatNpy({ data: labelData, shape: [batches.length, BATCH], dtype: 'int32' }));
  return { inputs, labels };
}

const dataOf = (batches: ReturnType<typeof makeBatches>) =>
  async function* () {
    yield* batches;
  };

async function pruned50(): Promise<{ teacher: Model; student: Model; file: string }> {
  const teacher = await loadModel(fixture('deit_scripted.pt'));
  const stats = await gatherStats(teacher, calibrationBatches());
  const { model: student } = await prune(teacher, plan(stats, { ratio: 0.5 }));
  const file = path.join(dir, 'student.pt');
  await student.save(file);
  return { teacher, student, file };
}

interface Reference {
  loss: number[];
  crossEntropy: number[];
  distillation: number[];
  lr: number[];
  gradNorm: number[];
  parameters: Array<{ name: string; shape: number[]; offset: number }>;
  params: Float64Array;
}

function pythonReference(
  student: string,
  teacher: string | undefined,
  files: { inputs: string; labels: string },
  args: string[],
  config = FIXTURE_CONFIG,
): Reference {
  const out = path.join(dir, `ref-${Date.now()}.json`);
  const params = out.replace('.json', '.npy');
  runPython('finetune_reference.py', [
    '--student',
    student,
    ...(teacher ? ['--teacher', teacher] : []),
    '--config',
    JSON.stringify(config),
    '--inputs',
    files.inputs,
    '--labels',
    files.labels,
    '--out',
    out,
    '--params',
    params,
    ...args,
  ]);
  return {
    ...(JSON.parse(fs.readFileSync(out, 'utf8')) as Omit<Reference, 'params'>),
    params: readNpy(params).data as Float64Array,
  };
}

/** Largest |ours - reference| / max |reference| over each parameter tensor. */
async function worstParameterError(model: Model, reference: Reference): Promise<number> {
  let worst = 0;
  for (const p of reference.parameters) {
    const ours = (await model.parameter(p.name)).data as Float32Array;
    const theirs = reference.params.subarray(p.offset, p.offset + ours.length);
    const scale = Math.max(...Array.from(theirs, Math.abs), 1e-30);
    worst = Math.max(worst, maxAbsDiff(ours, theirs) / scale);
  }
  return worst;
}

function relativeCurveError(ours: number[], theirs: number[]): number {
  expect(ours).toHaveLength(theirs.length);
  return Math.max(...ours.map((x, i) => Math.abs(x - theirs[i]) / Math.max(Math.abs(theirs[i]), 1e-12)));
}

async function snapshotParameters(model: Model): Promise<Map<string, Float32Array>> {
  const result = new Map<string, Float32Array>();
  for (const p of model.parameters()) result.set(p.name, (await model.parameter(p.name)).data as Float32Array);
  return result;
}

async function expectSameWeights(a: Model, b: Model): Promise<void> {
  const left = await snapshotParameters(a);
  const right = await snapshotParameters(b);
  expect([...left.keys()]).toEqual([...right.keys()]);
  for (const [name, values] of left)
    expect({ name, diff: maxAbsDiff(values, right.get(name)!) }).toEqual({ name, diff: 0 });
}

describe('finetune against eager PyTorch', () => {
  let teacher: Model;
  let student: Model;
  let studentFile: string;
  beforeAll(async () => {
    ({ teacher, student, file: studentFile } = await pruned50());
  });
  afterAll(async () => {
    await teacher.dispose();
    await student.dispose();
  });

  it('10 AdamW steps with distillation, clipping, warm-up and cosine: loss curve and every parameter equal PyTorch (<= 1e-6 / 1e-5 relative)', async () => {
    const batches = makeBatches(10, 1);
    const files = writeBatches(batches, 'kd');
    const options: FinetuneOptions = {
      teacher,
      data: dataOf(batches),
      stepsPerEpoch: 10,
      lr: 1e-3,
      batchSize: BATCH,
      clipNorm: 1,
      warmupSteps: 2,
      seed: 3,
      alpha: 0.7,
      temperature: 3,
    };
    const before = await snapshotParameters(student);
    const { model, report } = await finetune(student, options);
    const reference = pythonReference(studentFile, fixture('deit_scripted.pt'), files, [
      '--lr',
      '1e-3',
      '--clip',
      '1',
      '--warmup',
      '2',
      '--seed',
      '3',
      '--alpha',
      '0.7',
      '--temperature',
      '3',
    ]);
    expect(report.steps).toBe(10);
    expect(relativeCurveError(report.lr, reference.lr)).toBeLessThanOrEqual(1e-12);
    expect(relativeCurveError(report.loss, reference.loss)).toBeLessThanOrEqual(1e-6);
    expect(relativeCurveError(report.distillation, reference.distillation)).toBeLessThanOrEqual(1e-6);
    expect(relativeCurveError(report.gradNorm, reference.gradNorm)).toBeLessThanOrEqual(1e-6);
    expect(await worstParameterError(model, reference)).toBeLessThanOrEqual(1e-5);
    // Training moved the weights, and the input model is untouched.
    expect(await worstParameterError(student, reference)).toBeGreaterThan(1e-4);
    const after = await snapshotParameters(student);
    for (const [name, values] of before) expect(maxAbsDiff(values, after.get(name)!)).toBe(0);
    await model.dispose();
  });

  it('without a teacher (cross-entropy), constant schedule, no clipping: equal to PyTorch', async () => {
    const batches = makeBatches(6, 2);
    const files = writeBatches(batches, 'ce');
    const { model, report } = await finetune(student, {
      data: dataOf(batches),
      schedule: 'constant',
      stepsPerEpoch: 6,
      lr: 2e-3,
      weightDecay: 0.05,
      batchSize: BATCH,
    });
    const reference = pythonReference(studentFile, undefined, files, [
      '--lr',
      '2e-3',
      '--schedule',
      'constant',
      '--weight-decay',
      '0.05',
    ]);
    expect(report.distillation.every((d) => d === 0)).toBe(true);
    expect(relativeCurveError(report.loss, reference.loss)).toBeLessThanOrEqual(1e-6);
    expect(await worstParameterError(model, reference)).toBeLessThanOrEqual(1e-5);
    await model.dispose();
  });

  it("the reference's written-out AdamW is PyTorch 1.13's torch.optim.AdamW bit for bit (2.x's lerp_ rounds apart)", () => {
    const batches = makeBatches(6, 4);
    const files = writeBatches(batches, 'adamw');
    const args = ['--lr', '2e-3', '--schedule', 'constant', '--weight-decay', '0.05'];
    const written = pythonReference(studentFile, fixture('deit_scripted.pt'), files, args);
    const torchs = pythonReference(studentFile, fixture('deit_scripted.pt'), files, [...args, '--optimizer', 'torch']);
    const major = Number(
      execFileSync(python, ['-c', 'import torch; print(torch.__version__.split(".")[0])']).toString(),
    );
    let worst = 0;
    for (let i = 0; i < written.params.length; i++)
      worst = Math.max(worst, Math.abs(written.params[i] - torchs.params[i]));
    if (major < 2) expect(worst).toBe(0);
    else expect(worst).toBeGreaterThan(0); // eager 2.x moves the first moment with lerp_
    expect(written.loss[0]).toBe(torchs.loss[0]); // before any update the two runs are the same computation
  });

  it("precision 'bf16': forward and loss under autocast equal PyTorch's torch.autocast('cpu', bfloat16) steps; weights stay float32", async () => {
    const batches = makeBatches(6, 5);
    const files = writeBatches(batches, 'bf16');
    const { model, report } = await finetune(student, {
      teacher,
      data: dataOf(batches),
      schedule: 'constant',
      stepsPerEpoch: 6,
      lr: 1e-3,
      batchSize: BATCH,
      precision: 'bf16',
    });
    const args = ['--lr', '1e-3', '--schedule', 'constant'];
    const reference = pythonReference(studentFile, fixture('deit_scripted.pt'), files, [
      ...args,
      '--precision',
      'bf16',
    ]);
    const float32 = pythonReference(studentFile, fixture('deit_scripted.pt'), files, args);
    expect(report.precision).toEqual({ kind: 'bf16', skippedSteps: 0, lossScale: 1 });
    expect(model.parameters().every((p) => p.dtype === 'float32')).toBe(true);
    const lossError = relativeCurveError(report.loss, reference.loss);
    const weightError = await worstParameterError(model, reference);
    expect(lossError).toBeLessThanOrEqual(1e-6);
    expect(weightError).toBeLessThanOrEqual(1e-5);
    // bfloat16 is not float32: the float32 run is measurably elsewhere.
    expect(relativeCurveError(report.loss, float32.loss)).toBeGreaterThan(1e-4);
    await model.dispose();
  });

  it("precision 'fp16' is for CUDA: on the CPU it is INVALID_ARGUMENT before any step", async () => {
    const batches = makeBatches(1, 6);
    expect(
      await codeOf(
        finetune(student, { data: dataOf(batches), schedule: 'constant', stepsPerEpoch: 1, precision: 'fp16' }),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(await codeOf(finetune(student, { data: dataOf(batches), precision: 'fp8' as 'fp16' }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('a scripted model with dropout 0.1 trains in train mode with the same dropout masks as PyTorch (same seeds)', async () => {
    const model = await loadModel(fixture('deit_dropout_scripted.pt'));
    const batches = makeBatches(4, 3);
    const files = writeBatches(batches, 'dropout');
    const { model: tuned, report } = await finetune(model, {
      data: dataOf(batches),
      stepsPerEpoch: 4,
      lr: 1e-3,
      batchSize: BATCH,
      seed: 11,
    });
    expect(report.mode.kind).toBe('module');
    const reference = pythonReference(
      fixture('deit_dropout_scripted.pt'),
      undefined,
      files,
      ['--lr', '1e-3', '--seed', '11'],
      { ...FIXTURE_CONFIG, drop_rate: 0.1 } as typeof FIXTURE_CONFIG,
    );
    expect(relativeCurveError(report.loss, reference.loss)).toBeLessThanOrEqual(1e-6);
    expect(await worstParameterError(tuned, reference)).toBeLessThanOrEqual(1e-5);
    // The reference ran in train mode with dropout: equal losses mean the masks and the mode agreed.
    await Promise.all([tuned.dispose(), model.dispose()]);
  });

  it('the tuned model saved by us loads in PyTorch and gives our outputs (<= 1e-5), in eval mode, with its card noting the fine-tuning', async () => {
    const carded = await student.clone();
    carded.setCard({ inputShape: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    const { model } = await finetune(carded, {
      teacher,
      data: dataOf(makeBatches(3, 4)),
      stepsPerEpoch: 3,
      lr: 1e-3,
      batchSize: BATCH,
    });
    await carded.dispose();
    const file = path.join(dir, 'tuned.pt');
    await model.save(file);
    const input = readNpy(fixture('input_b4.npy'));
    const ours = asTensor(await model.forward(input)).data as Float32Array;
    const python = readPythonOutput(file, fixture('input_b4.npy'));
    expect(maxAbsDiff(ours, python.output)).toBeLessThanOrEqual(1e-5);
    const reloaded = await loadModel(file);
    expect(maxAbsDiff(asTensor(await reloaded.forward(input)).data as Float32Array, ours)).toBe(0);
    const history = model.card?.finetuning as Array<Record<string, unknown>> | undefined;
    expect(history?.[history.length - 1]).toMatchObject({ tool: 'torch-vbp', steps: 3, teacher: true, lr: 1e-3 });
    expect(python.card).toMatchObject({ inputShape: [3, 32, 32], finetuning: [{ steps: 3 }] });
    await Promise.all([model.dispose(), reloaded.dispose()]);
  });
});

describe('finetune faults, abort, checkpoints', () => {
  let teacher: Model;
  let student: Model;
  const batches = makeBatches(8, 5);
  const base = (): FinetuneOptions => ({
    teacher,
    data: dataOf(batches),
    stepsPerEpoch: 4,
    epochs: 2,
    lr: 1e-3,
    batchSize: BATCH,
    seed: 2,
  });
  beforeAll(async () => {
    ({ teacher, student } = await pruned50());
  });
  afterAll(async () => {
    await teacher.dispose();
    await student.dispose();
  });

  it('a NaN loss stops with NON_FINITE and keeps the weights of the last good step', async () => {
    const poisoned = batches.map((b, i) =>
      i === 3 ? { ...b, input: { ...b.input, data: b.input.data.map((x, j) => (j === 5 ? NaN : x)) } } : b,
    );
    const constant = { ...base(), schedule: 'constant' as const, epochs: 1 };
    const error = await finetune(student, { ...constant, data: dataOf(poisoned), stepsPerEpoch: 8 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FinetuneError);
    const failure = error as FinetuneError;
    expect(failure.code).toBe('NON_FINITE');
    expect(failure.message).toMatch(/loss is NaN at step 4/);
    expect(failure.report?.steps).toBe(3);
    const { model: threeSteps } = await finetune(student, { ...constant, stepsPerEpoch: 3 });
    await expectSameWeights(failure.model!, threeSteps);
    await Promise.all([failure.model?.dispose(), threeSteps.dispose()]);
  });

  it('an AbortSignal stops between steps with ABORTED and the weights so far', async () => {
    const controller = new AbortController();
    const error = (await finetune(student, {
      ...base(),
      schedule: 'constant',
      signal: controller.signal,
      onProgress: (p) => p.step === 2 && controller.abort(),
    }).catch((e: unknown) => e)) as FinetuneError;
    expect(error).toBeInstanceOf(FinetuneError);
    expect(error.code).toBe('ABORTED');
    expect(error.report?.steps).toBe(2);
    const { model: two } = await finetune(student, { ...base(), schedule: 'constant', epochs: 1, stepsPerEpoch: 2 });
    await expectSameWeights(error.model!, two);
    await Promise.all([error.model?.dispose(), two.dispose()]);
  });

  it('resume from a checkpoint written before an abort equals an uninterrupted run (weights, loss curve); checkpoints load in PyTorch', async () => {
    const { model: whole, report: wholeReport } = await finetune(student, base());
    const checkpoint = path.join(dir, 'ckpt.pt');
    const controller = new AbortController();
    const aborted = (await finetune(student, {
      ...base(),
      checkpoint: { path: checkpoint, every: 3 },
      signal: controller.signal,
      onProgress: (p) => p.step === 5 && controller.abort(),
    }).catch((e: unknown) => e)) as FinetuneError;
    expect(aborted.code).toBe('ABORTED');
    await aborted.model?.dispose();
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // PyTorch reads the checkpoint as a model (eval mode), with our card inside.
    const python = readPythonOutput(checkpoint, fixture('input_b4.npy'));
    expect(python.output.length).toBe(40);

    const { model: resumed, report } = await finetune(student, { ...base(), resume: checkpoint });
    expect(report.resumedAt).toBe(3);
    expect(report.steps).toBe(8);
    expect(report.loss).toEqual(wholeReport.loss);
    expect(report.epochs.map((e) => e.steps)).toEqual([4, 4]);
    await expectSameWeights(resumed, whole);
    await Promise.all([whole.dispose(), resumed.dispose()]);
  });

  it('resume refuses other settings, another model and a plain model file', async () => {
    const checkpoint = path.join(dir, 'ckpt2.pt');
    const { model } = await finetune(student, { ...base(), epochs: 1, checkpoint: { path: checkpoint, every: 2 } });
    await model.dispose();
    const other = await finetune(student, { ...base(), epochs: 1, lr: 5e-4, resume: checkpoint }).catch(
      (e: Error) => e,
    );
    expect(other).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/lr: 0.001 in the checkpoint, 0.0005 now/),
    });
    expect(await codeOf(finetune(teacher, { ...base(), epochs: 1, resume: checkpoint }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(finetune(student, { ...base(), resume: fixture('deit_scripted.pt') }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it("trainable: 'mlp' trains only fc1/fc2; the rest stays bit-identical", async () => {
    const { model, report } = await finetune(student, { ...base(), epochs: 1, trainable: 'mlp' });
    const before = await snapshotParameters(student);
    const after = await snapshotParameters(model);
    for (const [name, values] of before) {
      const changed = maxAbsDiff(values, after.get(name)!) > 0;
      expect({ name, changed }).toEqual({ name, changed: /mlp\.fc[12]\./.test(name) });
    }
    expect(report.parameters.trainable).toBeLessThan(report.parameters.total);
    await model.dispose();
  });

  it('nothing native is left alive after runs, failures and aborts', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    expect(nativeMemory().liveTrainers).toBe(0);
  });
});

describe('finetune and train/eval mode', () => {
  const data = dataOf(makeBatches(2, 6));
  it('a model traced in train mode (dropout frozen on) is refused with NOT_TRAINABLE naming the ops', async () => {
    const model = await loadModel(fixture('deit_dropout_traced_train.pt'));
    const error = (await finetune(model, { data, stepsPerEpoch: 2, batchSize: BATCH }).catch((e: Error) => e)) as Error;
    expect(error).toMatchObject({
      code: 'NOT_TRAINABLE',
      message: expect.stringMatching(/traced in train mode.*torch\.jit\.script/s),
    });
    expect(error.message).toMatch(/aten::dropout\(p=0\.1, train=true\)/);
    await model.dispose();
  });

  it('a model traced in eval mode trains with dropout frozen off, and the report says so', async () => {
    const model = await loadModel(fixture('deit_dropout_traced_eval.pt'));
    const { model: tuned, report } = await finetune(model, { data, stepsPerEpoch: 2, batchSize: BATCH });
    expect(report.mode.kind).toBe('traced-eval');
    expect(report.mode.frozenOff).toHaveLength(13);
    expect(report.mode.note).toMatch(/traced in eval mode/);
    await Promise.all([model.dispose(), tuned.dispose()]);
  });

  it('models whose forward does not return [batch, classes] logits are refused with NOT_TRAINABLE', async () => {
    const model = await loadModel(fixture('mlp_variants', 'c_gelu_tanh_scripted.pt'));
    const input = { data: new Float32Array(2 * 5 * 16), shape: [2, 5, 16], dtype: 'float32' as const };
    const error = await finetune(model, {
      data: async function* () {
        yield { input, labels: new Int32Array([0, 1]) };
      },
      schedule: 'constant',
    }).catch((e: Error) => e);
    expect(error).toMatchObject({ code: 'NOT_TRAINABLE', message: expect.stringMatching(/\[batch, classes\]/) });
    await model.dispose();
  });

  it('option errors are INVALID_ARGUMENT before any work', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const bad: Array<Record<string, unknown>> = [
      { data, bogus: 1 },
      { data, lr: 0 },
      { data, epochs: 1.5 },
      { data, alpha: 0.5 },
      { data, schedule: 'linear' },
      { data },
      { data, schedule: 'constant', trainable: [] },
      { data, schedule: 'constant', checkpoint: { path: 'x.pt', every: 0 } },
      { data: 42 },
    ];
    for (const options of bad)
      expect({ options, code: await codeOf(finetune(model, options as unknown as FinetuneOptions)) }).toEqual({
        options,
        code: 'INVALID_ARGUMENT',
      });
    await model.dispose();
  });
});
