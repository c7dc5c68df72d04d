/**
 * Fine-tuning step time, torch-vbp against PyTorch's eager step (test/python/finetune_reference.py --time) on
 * the same weights, batch and thread count, in alternating rounds. A step is the wall time from one step's
 * end to the next: the student's forward, backward and AdamW update, and with a teacher its forward (which
 * torch-vbp runs for the next batch while the student trains on this one; Python runs it in turn).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { finetune, loadModel, readNpy, type Device, type Model, type Tensor } from '../lib';
import { formatNpy } from '../lib/formats/npy';
import { packageRoot } from '../lib/util/package-root';
import { median, randomBatches } from './util';

export interface StepSetting {
  label: string;
  student: string;
  teacher: string;
  /** models.DeiT keyword arguments, for the eager rebuild. */
  config: Record<string, unknown>;
  itemShape: number[];
  batch: number;
  steps: number;
  rounds: number;
  work: string;
  python: string;
  env: NodeJS.ProcessEnv;
  /** Where both sides train (default 'cpu'). */
  device?: string;
}

export interface StepComparison {
  nodeMs: number;
  pythonMs: number;
  ratio: number;
}

const WARMUP = 2;

async function nodeSteps(
  student: Model,
  teacher: Model | undefined,
  input: Tensor<Float32Array>,
  labels: Int32Array,
  steps: number,
): Promise<number[]> {
  const stamps: number[] = [];
  const data = async function* () {
    for (;;) yield { input, labels };
  };
  const { model } = await finetune(student, {
    ...(teacher ? { teacher } : {}),
    data: () => data(),
    stepsPerEpoch: steps,
    schedule: 'constant',
    lr: 1e-4,
    batchSize: input.shape[0],
    onProgress: () => stamps.push(performance.now()),
  });
  await model.dispose();
  return stamps.slice(WARMUP).map((t, i) => t - stamps[WARMUP - 1 + i]);
}

function pythonSteps(s: StepSetting, inputs: string, labels: string, withTeacher: boolean): number[] {
  const out = path.join(s.work, 'finetune-step.json');
  execFileSync(
    s.python,
    [
      path.join(packageRoot, 'test', 'python', 'finetune_reference.py'),
      '--student',
      s.student,
      ...(withTeacher ? ['--teacher', s.teacher] : []),
      '--config',
      JSON.stringify(s.config),
      '--inputs',
      inputs,
      '--labels',
      labels,
      '--repeat',
      String(s.steps + WARMUP),
      '--time',
      '--optimizer',
      'torch', // PyTorch's own AdamW: the Python pipeline as users run it
      '--warmup-steps',
      String(WARMUP),
      '--schedule',
      'constant',
      '--lr',
      '1e-4',
      '--threads',
      String(s.env.OMP_NUM_THREADS ?? 1),
      '--out',
      out,
      '--device',
      s.device ?? 'cpu',
    ],
    { env: s.env, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return (JSON.parse(fs.readFileSync(out, 'utf8')) as { stepMs: number[] }).stepMs.slice(WARMUP);
}

/** With and without a teacher: medians of all timed steps over the rounds. */
export async function finetuneStepVsPython(
  s: StepSetting,
): Promise<{ withTeacher: StepComparison; withoutTeacher: StepComparison }> {
  const [input] = randomBatches(1, s.batch, s.itemShape, 7);
  const labels = Int32Array.from({ length: s.batch }, (_, i) => i % 10);
  const inputsFile = path.join(s.work, 'finetune-step-inputs.npy');
  const labelsFile = path.join(s.work, 'finetune-step-labels.npy');
  fs.writeFileSync(inputsFile, formatNpy({ data: input.data, shape: [1, ...input.shape], dtype: 'float32' }));
  fs.writeFileSync(labelsFile, formatNpy({ data: labels, shape: [1, s.batch], dtype: 'int32' }));
  readNpy(inputsFile); // written whole before Python reads it
  const student = await loadModel(s.student, { device: (s.device ?? 'cpu') as Device });
  const teacher = await loadModel(s.teacher, { device: (s.device ?? 'cpu') as Device });
  const result: Record<string, StepComparison> = {};
  try {
    for (const withTeacher of [true, false]) {
      const node: number[] = [];
      const python: number[] = [];
      for (let round = 0; round < s.rounds; round++) {
        node.push(...(await nodeSteps(student, withTeacher ? teacher : undefined, input, labels, s.steps + WARMUP)));
        python.push(...pythonSteps(s, inputsFile, labelsFile, withTeacher));
      }
      result[withTeacher ? 'withTeacher' : 'withoutTeacher'] = {
        nodeMs: median(node),
        pythonMs: median(python),
        ratio: median(node) / median(python),
      };
    }
  } finally {
    await Promise.all([student.dispose(), teacher.dispose()]);
  }
  return result as { withTeacher: StepComparison; withoutTeacher: StepComparison };
}
