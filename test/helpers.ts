import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { readNpy, setNumThreads, VbpError, type Tensor, type Value, isTensor } from '../lib';

setNumThreads(1);

export const repoRoot = path.resolve(__dirname, '..');
export const fixtures = path.join(repoRoot, 'test', 'fixtures');
export const python = process.env.VBP_PYTHON ?? '/usr/bin/python3';

/** The fixture DeiT's models.DeiT arguments (test/python/models.py, DEIT_FIXTURE_CONFIG), for the eager references. */
export const FIXTURE_CONFIG = {
  img_size: 32,
  patch_size: 8,
  in_chans: 3,
  num_classes: 10,
  embed_dim: 48,
  depth: 3,
  num_heads: 3,
  mlp_ratio: 4.0,
};

export function fixture(...parts: string[]): string {
  return path.join(fixtures, ...parts);
}

export function npy(...parts: string[]): Tensor {
  return readNpy(fixture(...parts));
}

export function json<T = unknown>(...parts: string[]): T {
  return JSON.parse(fs.readFileSync(fixture(...parts), 'utf8')) as T;
}

export function asTensor(value: Value): Tensor {
  if (!isTensor(value)) throw new Error('expected a tensor output');
  return value;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Largest |a - b| / max(|b|, floor): relative error that stays meaningful for values near zero. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return worst;
}

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the system's temp folder, removed when the test process exits. */
export function tempDir(prefix = 'torch-vbp-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Runs a script of test/python with Debian's torch (one thread, see test/setup-env.ts) and returns its stdout. */
export function runPython(script: string, args: string[]): string {
  return execFileSync(python, [path.join(repoRoot, 'test', 'python', script), ...args], { encoding: 'utf8' });
}

export const vbpBin = path.join(repoRoot, 'bin', 'vbp.js');

/** Runs the `vbp` command as a user does, in a child process. */
export function vbp(args: string[], env: NodeJS.ProcessEnv = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [vbpBin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function sha(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The code a promise rejects with ('no error' when it resolves); anything but a VbpError fails the test. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VbpError);
    expect((error as Error).message).not.toMatch(/frame #|Exception raised from/); // no C++ backtraces
    return (error as VbpError).code;
  }
  return 'no error';
}

/** Calibration images of the fixtures, as 4 batches of 16 (the order the Python reference uses). */
export function calibrationBatches(first = 0, count = 4): Tensor[] {
  const calib = npy('calib.npy');
  const per = 3 * 32 * 32;
  const batches: Tensor[] = [];
  for (let i = first; i < first + count; i++) {
    batches.push({
      data: (calib.data as Float32Array).slice(i * 16 * per, (i + 1) * 16 * per),
      shape: [16, 3, 32, 32],
    });
  }
  return batches;
}

export interface PythonCheck {
  output: Float32Array;
  linear: Record<string, { in_features: number | null; out_features: number | null; weight_shape: number[] }>;
  /** The model card inside the archive, as torch.jit.load(f, _extra_files=...) reads it. */
  card: Record<string, unknown> | null;
}

/** Loads a model file with stock PyTorch (torch.jit.load) and runs it on an .npy input. */
export function readPythonOutput(model: string, input: string): PythonCheck {
  const out = path.join(tempDir('torch-vbp-py-'), 'out.npy');
  const line = runPython('check_saved.py', [model, input, out]).trim().split('\n').pop()!;
  const report = JSON.parse(line) as { ok: boolean; linear: PythonCheck['linear']; card: PythonCheck['card'] };
  return { output: readNpy(out).data as Float32Array, linear: report.linear, card: report.card };
}
