/**
 * The GPU check (scripts/cuda-check.ts) run on the CPU with --quick: every section, the Python references
 * included, so that the check is known to work before a GPU machine runs it (issue 10). On the CPU the
 * device and the CPU paths are the same code, so the differences must be exactly zero.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fixtures, python, repoRoot, tempDir } from './helpers';

const script = path.join(repoRoot, 'dist', 'scripts', 'cuda-check.js');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, VBP_PYTHON: python, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('scripts/cuda-check on the CPU', () => {
  it('runs every section and writes a passing report and its table', () => {
    const work = tempDir('torch-vbp-cuda-check-');
    const out = path.join(work, 'out', 'cuda-results.json');
    const { status, stderr } = run([
      '--fixtures',
      fixtures,
      '--device',
      'cpu',
      '--quick',
      '--work',
      work,
      '--out',
      out,
    ]);
    expect({ status, stderr: status === 0 ? '' : stderr }).toEqual({ status: 0, stderr: '' });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const report = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, any>;
    expect(report).toMatchObject({ device: 'cpu', passed: true, failures: [] });
    expect(report.environment.pytorch).toMatchObject({ device: 'cpu', torch: expect.stringMatching(/^\d+\.\d+/) });

    expect(report.parity.map((r: { model: string }) => r.model)).toEqual([
      'deit_scripted',
      'deit_traced',
      'vit_torchvision',
    ]);
    for (const row of report.parity) {
      expect(row.vsPyTorchSameDevice.maxAbs).toBe(0); // bit-identical to torch.jit.load on the same LibTorch
      expect(row.vsOursOnCpu.maxAbs).toBe(0);
    }
    for (const row of report.pipeline) {
      expect(row).toMatchObject({
        passed: true,
        statsMean: 0,
        statsVariance: 0,
        statsCovariance: 0,
        selectionOverlapAt50: 1,
      });
      expect(row.twoReplicasVsOnePass.mean).toBeLessThanOrEqual(1e-12);
      expect(row.twoReplicasVsOnePass.variance).toBeLessThanOrEqual(1e-12);
      for (const compensation of ['mean', 'lsq']) {
        expect(row[compensation].prunedDeviceVsCpu.maxAbs).toBe(0);
        expect(row[compensation].savedReloadedOnCpu.maxAbs).toBe(0);
        expect(row[compensation].savedInPyTorchVsOurs.relative).toBeLessThanOrEqual(1e-5);
      }
    }
    // On the same LibTorch and CPU, the fine-tuning steps equal PyTorch's eager ones bit for bit.
    expect(report.training).toMatchObject({
      steps: 5,
      passed: true,
      lossRelative: 0,
      parametersRelative: 0,
      mode: 'module',
    });
    const [bf16, fp16] = report.half;
    expect(bf16).toMatchObject({
      dtype: 'bfloat16',
      supported: true,
      statsAreFloat64: true,
      prunedParameterDtype: 'bfloat16',
    });
    expect(bf16.prunedVsFloat32Pruned.relative).toBeGreaterThan(0); // bfloat16 rounding, which float32 lacks
    expect(bf16.prunedVsFloat32Pruned.relative).toBeLessThan(0.05);
    expect(fp16).toMatchObject({ dtype: 'float16', supported: false, error: expect.stringContaining('INPUT_DTYPE') });

    expect(report.throughput.model).toBe('deit_tiny');
    for (const row of report.throughput.rows) {
      expect(row.forward.oursMs).toBeGreaterThan(0);
      expect(row.forward.pytorchMs).toBeGreaterThan(0);
      expect(row.calibration.throughputRatio).toBeGreaterThan(0);
      expect(row.pruned55.macRatio).toBeGreaterThan(1.3);
    }
    expect(report.throughput.finetune.withTeacher.ratio).toBeGreaterThan(0);
    expect(report.throughput.finetune.withoutTeacher.ratio).toBeGreaterThan(0);

    const table = fs.readFileSync(path.join(work, 'out', 'cuda-results.md'), 'utf8');
    expect(table).toContain('| deit_scripted | 0 | 0 |');
    expect(table).toMatch(/\| batch 2 \| [\d.]+ \| [\d.]+ \|/);
    expect(table).toContain('Fine-tuning step, batch 2');
    expect(table).toContain('Fine-tuning, 5 steps with distillation: losses within 0 and weights within 0');
  }, 180_000);

  it('refuses unknown options and a CUDA device on a CPU-only LibTorch with exit code 2', () => {
    const unknown = run(['--fixtures', fixtures, '--quik']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--quik'");
    const sections = run(['--fixtures', fixtures, '--sections', 'parity,speed']);
    expect(sections.status).toBe(2);
    expect(sections.stderr).toContain('unknown section speed');
    const cuda = run(['--fixtures', fixtures, '--device', 'cuda']);
    expect(cuda.status).toBe(2);
    expect(cuda.stderr).toMatch(/CPU-only/);
  });
});
