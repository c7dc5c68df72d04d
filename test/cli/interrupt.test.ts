/**
 * Lost work (issue 21, item 19): Ctrl-C during `vbp stats` keeps the statistics so far and `--resume`
 * continues them exactly; Ctrl-C during `vbp finetune --checkpoint` writes a checkpoint at the interruption
 * that `--resume` continues; --json failures print a JSON error object on stdout; `vbp --version` fails
 * with a coded message when the native addon cannot load. Every child process ends by itself or is killed
 * after a bounded time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { FinetuneError, NpyDataset, Stats, finetune, formatNpy, loadModel } from '../../lib';
import { fixture, maxRelDiff, repoRoot, tempDir, vbp, vbpBin } from '../helpers';

const dir = tempDir('torch-vbp-interrupt-');
const fmnist = path.join(repoRoot, 'models', 'deit_fmnist.pt');
const model = fixture('deit_scripted.pt');
const labels = path.join(dir, 'labels.npy');

beforeAll(() => {
  fs.writeFileSync(
    labels,
    formatNpy({ data: BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i % 10)), shape: [64] }),
  );
});

interface Interrupted {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `vbp args` with progress bars on and sends SIGINT once `ready(stderr)` says enough work is done;
 * killed after `limitMs` whatever happens.
 */
function interruptWhen(args: string[], ready: (stderr: string) => boolean, limitMs = 90_000): Promise<Interrupted> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [vbpBin, ...args], { env: { ...process.env, VBP_PROGRESS: '1' } });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const guard = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!sent && ready(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The largest value a progress bar has shown for `total` (cli-progress prints "value/total"). */
function progressed(stderr: string, total: number): number {
  return Math.max(0, ...[...stderr.matchAll(new RegExp(`(\\d+)/${total}\\b`, 'g'))].map((m) => Number(m[1])));
}

describe('vbp stats: Ctrl-C keeps the statistics so far, --resume continues them exactly', () => {
  const out = path.join(dir, 'stats.safetensors');
  const partial = path.join(dir, 'stats.partial.safetensors');
  const argsFor = (file: string, batchSize = '32'): string[] => [
    'stats',
    fmnist,
    '--data',
    'fashion-mnist',
    '--limit',
    '8192',
    '--batch-size',
    batchSize,
    '--out',
    file,
    '--threads',
    '1',
  ];
  const args = argsFor(out);

  it('writes the partial statistics atomically and says how to resume (JSON error object with --json)', async () => {
    const r = await interruptWhen([...args, '--json'], (stderr) => progressed(stderr, 8192) >= 64);
    expect(r.code).toBe(130);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(partial)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const error = JSON.parse(r.stdout).error;
    expect(error).toMatchObject({ code: 'ABORTED', exitCode: 130, kept: partial, totalItems: 8192 });
    expect(error.message).toMatch(
      /^interrupted by Ctrl-C after \d+ of 256 batches \(\d+ of 8192 items\); kept them in '.*stats\.partial\.safetensors': run the same command with --resume/,
    );
    expect(r.stderr).toContain('vbp: error [ABORTED]: interrupted by Ctrl-C');
    expect(r.stderr.endsWith('\x1b[?25h\x1b[?7h')).toBe(true); // the terminal gets its cursor back, last
    const kept = await Stats.load(partial);
    expect(kept.info.items).toBe(error.items);
    expect(kept.info.items).toBeGreaterThanOrEqual(64);
    expect(kept.info.items).toBeLessThan(8192);
  });

  it('an interrupted run is not replaced by accident; --resume refuses other settings and complete statistics', () => {
    const fresh = vbp(args);
    expect(fresh.status).toBe(2);
    expect(fresh.stderr).toMatch(
      /\[OUTPUT_EXISTS\]: --out: '.*stats\.partial\.safetensors' holds the statistics of an interrupted run.*--resume .*--force/,
    );
    const other = vbp([...argsFor(out, '64'), '--resume', partial]);
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(
      /--resume: .* was written by a run with other settings \(batchSize: 32 then, 64 now\)/,
    );
  });

  it('--resume gives the statistics of an uninterrupted run and removes the partial file', async () => {
    const resumed = vbp([...args, '--resume', partial, '--json']);
    expect(resumed.stderr).toBe('');
    expect(resumed.status).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ resumedFrom: partial, info: { items: 8192 } });
    expect(fs.existsSync(partial)).toBe(false);
    const whole = path.join(dir, 'whole.safetensors');
    expect(vbp(argsFor(whole)).status).toBe(0);
    const [a, b] = [await Stats.load(out), await Stats.load(whole)];
    expect(a.info).toEqual(b.info); // no trace of the interruption left
    a.layers.forEach((l, i) => {
      expect(l.count).toBe(b.layers[i].count);
      expect(maxRelDiff(a.variance(i), b.variance(i))).toBeLessThanOrEqual(1e-12);
      expect(maxRelDiff(l.mean, b.layers[i].mean, 1e-9)).toBeLessThanOrEqual(1e-12);
    });
    const complete = vbp([...argsFor(path.join(dir, 'again.safetensors')), '--resume', whole]);
    expect(complete.status).toBe(2);
    expect(complete.stderr).toContain('holds complete statistics, not those of an interrupted vbp stats run');
  });

  it('prune warns about partial statistics', async () => {
    const file = path.join(dir, 'p.safetensors');
    const r = await interruptWhen(
      [
        'stats',
        fmnist,
        '--data',
        'fashion-mnist',
        '--limit',
        '60000',
        '--batch-size',
        '8',
        '--threads',
        '1',
        '--out',
        file,
      ],
      // The whole training split, so that the signal lands while it runs (4096 items ended before it, here).
      (stderr) => progressed(stderr, 60000) >= 16,
    );
    expect(r.code).toBe(130);
    const kept = path.join(dir, 'p.partial.safetensors');
    const pruned = vbp(['prune', fmnist, '--stats', kept, '--ratio', '0.5', '--out', path.join(dir, 'p.pt')]);
    expect(pruned.status).toBe(0);
    expect(pruned.stderr).toMatch(
      /warning: '.*p\.partial\.safetensors' holds the partial statistics of an interrupted vbp stats run \(\d+ of 60000 items\); finish them with vbp stats \.\.\. --resume/,
    );
  });
});

describe('vbp finetune: Ctrl-C with --checkpoint keeps a checkpoint at the interruption', () => {
  const base = [
    'finetune',
    model,
    '--teacher',
    model,
    '--data',
    fixture('calib.npy'),
    '--raw',
    '--labels',
    labels,
    '--batch-size',
    '16',
    '--lr',
    '1e-3',
    '--threads',
    '1',
  ];

  it('the library, with checkpoint.atAbort, writes the checkpoint after the last completed step and resume continues it exactly', async () => {
    const student = await loadModel(model);
    const data = new NpyDataset(fixture('calib.npy'), labels);
    const options = { teacher: student, data, batchSize: 16, lr: 1e-3, epochs: 2, schedule: 'constant' as const };
    const checkpoint = path.join(dir, 'lib-ckpt.pt');
    const abortAt5 = async (atAbort: boolean) => {
      const controller = new AbortController();
      const error = (await finetune(student, {
        ...options,
        checkpoint: { path: checkpoint, every: 3, atAbort },
        signal: controller.signal,
        onProgress: (p) => p.step === 5 && controller.abort(),
      }).catch((e: unknown) => e)) as FinetuneError;
      expect(error).toBeInstanceOf(FinetuneError);
      expect(error.code).toBe('ABORTED');
      await error.model?.dispose();
      return error;
    };
    // Without atAbort the last periodic checkpoint (step 3) is all there is; with it, step 5 is kept.
    expect((await abortAt5(false)).checkpoint).toBeUndefined();
    expect((await abortAt5(true)).checkpoint).toEqual({ path: checkpoint, step: 5 });
    const { model: resumed, report } = await finetune(student, { ...options, resume: checkpoint });
    const { model: whole, report: wholeReport } = await finetune(student, options);
    expect(report.resumedAt).toBe(5);
    expect(report.loss).toEqual(wholeReport.loss);
    await Promise.all([resumed.dispose(), whole.dispose(), student.dispose()]);
  });

  it('vbp finetune says what it kept and how to resume; --resume continues from that step', async () => {
    const checkpoint = path.join(dir, 'ckpt.pt');
    const out = path.join(dir, 'tuned.pt');
    const args = [...base, '--epochs', '400', '--checkpoint', checkpoint, '--checkpoint-every', '100000', '--out', out];
    const r = await interruptWhen(args, (stderr) => progressed(stderr, 1600) >= 2);
    expect(r.code).toBe(130);
    expect(fs.existsSync(out)).toBe(false);
    expect(r.stderr).toMatch(
      /vbp: error \[ABORTED\]: interrupted by Ctrl-C after (\d+) of 1600 steps; kept a checkpoint at step \1 in '.*ckpt\.pt': run the same command with --resume '.*ckpt\.pt' to continue/,
    );
    const step = Number(/kept a checkpoint at step (\d+)/.exec(r.stderr)![1]);
    expect(step).toBeGreaterThanOrEqual(2);
    // The same run, resumed, interrupted again at once, starts where the checkpoint is.
    const again = await interruptWhen(
      [...args, '--resume', checkpoint, '--json'],
      (stderr) => progressed(stderr, 1600) > step,
    );
    expect(again.code).toBe(130);
    const error = JSON.parse(again.stdout).error;
    expect(error).toMatchObject({ code: 'ABORTED', exitCode: 130, kept: checkpoint, totalSteps: 1600 });
    expect(error.step).toBeGreaterThan(step);
  });

  it('without --checkpoint it says that nothing was kept and how to keep it', async () => {
    const r = await interruptWhen(
      [...base, '--epochs', '400', '--out', path.join(dir, 'never.pt')],
      (stderr) => progressed(stderr, 1600) >= 1,
    );
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(
      /interrupted by Ctrl-C after \d+ of 1600 steps; nothing was kept \(with --checkpoint FILE an interruption keeps a checkpoint that --resume continues\)/,
    );
  });
});

describe('--json failures print a JSON error object on stdout', () => {
  it.each([
    [
      'bad usage',
      ['stats', model, '--out', path.join(dir, 'x.safetensors'), '--json'],
      2,
      'INVALID_ARGUMENT',
      /--data: is required/,
    ],
    [
      'an option commander refuses',
      ['inspect', model, '--bogus', '--json'],
      2,
      'INVALID_ARGUMENT',
      /unknown option '--bogus'/,
    ],
    ['a missing model', ['inspect', path.join(dir, 'missing.pt'), '--json'], 2, 'MODEL_NOT_FOUND', /missing\.pt/],
    [
      'a failure of the work',
      [
        'prune',
        model,
        '--data',
        fixture('calib.npy'),
        '--raw',
        '--ratio',
        '0.999',
        '--out',
        path.join(dir, 'never.pt'),
        '--json',
      ],
      1,
      'PLAN',
      /cannot remove/,
    ],
  ] as Array<[string, string[], number, string, RegExp]>)('%s', (_what, args, exitCode, code, message) => {
    const r = vbp(args);
    expect(r.status).toBe(exitCode);
    const error = JSON.parse(r.stdout).error;
    expect(error).toMatchObject({ code, exitCode });
    expect(error.message).toMatch(message);
    expect(r.stderr).toMatch(
      new RegExp(`\\[?${code === 'INVALID_ARGUMENT' && /bogus/.test(args.join(' ')) ? '' : code}`),
    );
  });
});

describe('vbp --version', () => {
  it('exits 1 with a coded message when the native addon cannot load (a copy of the package without its builds)', () => {
    const copy = tempDir('torch-vbp-noaddon-');
    for (const part of ['bin', 'dist', 'package.json'])
      fs.cpSync(path.join(repoRoot, part), path.join(copy, part), { recursive: true });
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
    const env = { ...process.env };
    delete env.TORCH_VBP_ADDON;
    const r = spawnSync(process.execPath, [path.join(copy, 'bin', 'vbp.js'), '--version'], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    const version = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version;
    expect(r.stdout).toBe(`torch-vbp ${version}\n`);
    expect(r.stderr).toMatch(
      /^vbp: error \[ADDON_NOT_BUILT\]: torch-vbp's native addon is not built: build it with `npm run build:native`/s,
    );
    expect(r.stderr).not.toMatch(/VBP_DEBUG|report it/); // not a bug of ours
    // The rest of the command line still works without the addon.
    expect(
      spawnSync(process.execPath, [path.join(copy, 'bin', 'vbp.js'), '--help'], { encoding: 'utf8', env }).status,
    ).toBe(0);
  });

  it('inside an installed package, says how npm builds it', () => {
    const app = tempDir('torch-vbp-app-');
    const copy = path.join(app, 'node_modules', 'torch-vbp');
    for (const part of ['bin', 'dist', 'package.json'])
      fs.cpSync(path.join(repoRoot, part), path.join(copy, part), { recursive: true });
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
    const env = { ...process.env };
    delete env.TORCH_VBP_ADDON;
    const r = spawnSync(process.execPath, [path.join(copy, 'bin', 'vbp.js'), '--version'], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[ADDON_NOT_BUILT]');
    expect(r.stderr).toContain('npm install-scripts approve torch-vbp && npm rebuild torch-vbp');
    expect(r.stderr).not.toContain('build:native');
  });

  it('exits 0 and names LibTorch with the addon', () => {
    const r = vbp(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^torch-vbp .*\nLibTorch /);
    expect(r.stderr).toBe('');
  });
});
