/**
 * The native core under conditions that used to crash, leak or give wrong results (issue 21, part B): each
 * case that could take the process down runs in a child process, so a crash fails its test, not the run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { finetune, gatherStats, loadModel, readNpy, type Tensor } from '../lib';
import { native } from '../lib/native/addon';
import { codeOf, fixture, json, maxRelDiff, repoRoot, tempDir } from './helpers';

const distLib = path.join(repoRoot, 'dist', 'lib');
const hardening = (...parts: string[]): string => fixture('hardening', ...parts);

interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** The JSON the script printed last, if it did. */
  result: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Runs `body` (the inside of an async function with `vbp` = torch-vbp's compiled library and `out(value)` to
 * report) in a fresh Node process; `shell` prefixes the command (ulimit, ...).
 */
function child(
  body: string,
  options: { env?: NodeJS.ProcessEnv; shell?: string; timeoutMs?: number } = {},
): ChildResult {
  const file = path.join(tempDir('torch-vbp-child-'), 'script.js');
  fs.writeFileSync(
    file,
    `'use strict';\nconst vbp = require(${JSON.stringify(distLib)});\nvbp.setNumThreads(1);\n` +
      `const out = (value) => process.stdout.write(JSON.stringify(value) + '\\n');\n` +
      `(async () => {\n${body}\n})().catch((error) => { out({ thrown: error.code ?? 'none', message: error.message }); });\n`,
  );
  const command = `${options.shell ?? ''} exec ${JSON.stringify(process.execPath)} ${JSON.stringify(file)}`;
  const r = spawnSync('bash', ['-c', command], {
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    timeout: options.timeoutMs ?? 120_000,
  });
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  let result: unknown;
  try {
    result = lines.length ? JSON.parse(lines[lines.length - 1]) : undefined;
  } catch {
    result = undefined;
  }
  return { status: r.status, signal: r.signal, stderr: r.stderr, result };
}

function expectClean(r: ChildResult): void {
  expect({ status: r.status, signal: r.signal, stderr: r.status === 0 ? '' : r.stderr }).toEqual({
    status: 0,
    signal: null,
    stderr: '',
  });
}

describe('MAC counting on arguments the kernel refuses (B3)', () => {
  it("a convolution with stride 0 is the kernel's FORWARD error, not SIGFPE", () => {
    const r = child(`
      const model = await vbp.loadModel(${JSON.stringify(hardening('conv_stride0.pt'))});
      try { await model.macs([1, 1, 8, 8]); out({ thrown: 'no error' }); } catch (e) { out({ thrown: e.code, message: e.message }); }`);
    expectClean(r);
    expect(r.result.thrown).toBe('FORWARD');
    expect(r.result.message).toMatch(/stride/);
  });

  it('a convolution with no output channels counts 0 MACs or fails with a coded error', () => {
    const r = child(`
      const model = await vbp.loadModel(${JSON.stringify(hardening('conv_empty.pt'))});
      try { out({ macs: (await model.macs([1, 1, 8, 8])).total }); } catch (e) { out({ thrown: e.code }); }`);
    expectClean(r);
    // LibTorch refuses an empty weight (1.13: "expected weight to be at least 1 at dimension 0"); counting it is 0.
    expect(r.result.thrown === 'FORWARD' || r.result.macs === 0).toBe(true);
  });
});

describe('tied parameters (B4)', () => {
  const reference = json<{ losses: number[]; parameters: Record<string, number[]>; parameterCount: number }>(
    'hardening',
    'tied_reference.json',
  );

  it('are listed and counted once, as torch.nn.Module.parameters() does', async () => {
    const model = await loadModel(hardening('tied.pt'));
    try {
      expect(model.parameterCount()).toBe(reference.parameterCount);
      expect(model.parameters().map((p) => p.name)).toEqual(Object.keys(reference.parameters));
    } finally {
      await model.dispose();
    }
  });

  it("are updated once per AdamW step: 3 steps equal PyTorch's", async () => {
    const model = await loadModel(hardening('tied.pt'));
    const input = readNpy(hardening('tied_input.npy')) as Tensor<Float32Array>;
    const labels = readNpy(hardening('tied_labels.npy')).data as Int32Array;
    const data = async function* () {
      for (let i = 0; i < 3; i++) yield { input, labels };
    };
    const { model: tuned, report } = await finetune(model, {
      data,
      epochs: 1,
      lr: 1e-2,
      weightDecay: 0.01,
      schedule: 'constant',
    });
    try {
      expect(report.loss.length).toBe(3);
      expect(maxRelDiff(report.loss, reference.losses)).toBeLessThan(1e-5);
      for (const [name, values] of Object.entries(reference.parameters)) {
        const actual = (await tuned.parameter(name)).data as Float32Array;
        const scale = Math.max(...values.map(Math.abs));
        const worst = Math.max(...values.map((v, i) => Math.abs(actual[i] - v)));
        expect({ name, relative: worst / scale < 1e-5 }).toEqual({ name, relative: true });
      }
    } finally {
      await Promise.all([model.dispose(), tuned.dispose()]);
    }
  });

  it('resume from a checkpoint of a tied model (this used to segfault)', () => {
    const dir = tempDir();
    const r = child(`
      const model = await vbp.loadModel(${JSON.stringify(hardening('tied.pt'))});
      const input = vbp.readNpy(${JSON.stringify(hardening('tied_input.npy'))});
      const labels = vbp.readNpy(${JSON.stringify(hardening('tied_labels.npy'))}).data;
      const data = async function* () { for (let i = 0; i < 4; i++) yield { input, labels }; };
      const ckpt = ${JSON.stringify(path.join(dir, 'ckpt.pt'))};
      const options = { data, epochs: 2, stepsPerEpoch: 2, lr: 1e-2, schedule: 'constant', checkpoint: { path: ckpt, every: 1 } };
      const whole = await vbp.finetune(model, options);
      const stop = new AbortController();
      await vbp.finetune(model, { ...options, signal: stop.signal, onProgress: (p) => { if (p.step === 2) stop.abort(); } }).catch((e) => { if (e.code !== 'ABORTED') throw e; });
      const resumed = await vbp.finetune(model, { ...options, resume: ckpt });
      const a = (await whole.model.parameter('mid.weight')).data, b = (await resumed.model.parameter('mid.weight')).data;
      out({ same: a.every((v, i) => v === b[i]), steps: resumed.report.loss.length });`);
    expectClean(r);
    expect(r.result).toMatchObject({ same: true });
  });
});

describe('dispose() frees native memory at once, without the garbage collector (B5)', () => {
  it('models, statistics sessions and trainers', () => {
    const r = child(`
      const file = ${JSON.stringify(hardening('wide_mlp.pt'))};
      const batch = { data: new Float32Array(8 * 1024).fill(0.5), shape: [8, 1024] };
      const live = () => vbp.nativeMemory().cpuCache.liveBytes;
      const before = live();
      const model = await vbp.loadModel(file);
      await model.forward(batch);
      const loaded = live();
      await model.dispose();
      const afterModel = live();
      const second = await vbp.loadModel(file);
      const stats = await vbp.gatherStats(second, [batch]);
      const labels = Int32Array.from({ length: 8 }, (_, i) => i);
      const tuned = await vbp.finetune(second, { data: async function* () { yield { input: batch, labels }; }, epochs: 1, lr: 1e-3, schedule: 'constant' });
      await second.dispose();
      await tuned.model.dispose();
      const memory = vbp.nativeMemory();
      out({ before, loaded, afterModel, afterAll: memory.cpuCache.liveBytes, cached: memory.cpuCache.cachedBytes, live: memory.liveModels + memory.liveSessions + memory.liveTrainers });`);
    expectClean(r);
    const { before, loaded, afterModel, afterAll, cached, live } = r.result;
    expect(loaded - before).toBeGreaterThanOrEqual(16 * 2 ** 20); // 16 MiB of parameters in cacheable blocks
    expect(afterModel).toBe(before);
    expect(afterAll).toBe(before);
    expect({ cached, live }).toEqual({ cached: 0, live: 0 });
  });
});

describe('a full disk while saving (B6)', () => {
  // RLIMIT_FSIZE: writes past 1 MiB fail with EFBIG, as on a full disk (SIGXFSZ ignored, as a shell's trap does).
  const fullDisk = 'ulimit -f 2048; trap "" XFSZ;';

  it('model.save() is an IO error naming the file, leaves no temporary file, and the process lives on', () => {
    const dir = tempDir();
    const target = path.join(dir, 'wide.pt');
    const r = child(
      `const model = await vbp.loadModel(${JSON.stringify(hardening('wide_mlp.pt'))});
       try { await model.save(${JSON.stringify(target)}); out({ thrown: 'no error' }); } catch (e) { out({ thrown: e.code, message: e.message }); }`,
      { shell: fullDisk },
    );
    expectClean(r);
    expect(r.result.thrown).toBe('IO');
    expect(r.result.message).toContain(dir);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a fine-tuning checkpoint likewise', () => {
    const dir = tempDir();
    const r = child(
      `const model = await vbp.loadModel(${JSON.stringify(hardening('wide_mlp.pt'))});
       const batch = { input: { data: new Float32Array(4 * 1024).fill(0.1), shape: [4, 1024] }, labels: Int32Array.from([0, 1, 2, 3]) };
       try {
         await vbp.finetune(model, { data: async function* () { yield batch; }, epochs: 1, stepsPerEpoch: 1, lr: 1e-3, schedule: 'constant',
                                     checkpoint: { path: ${JSON.stringify(path.join(dir, 'ckpt.pt'))}, every: 1 } });
         out({ thrown: 'no error' });
       } catch (e) { out({ thrown: e.code, message: e.message }); }`,
      { shell: fullDisk },
    );
    expectClean(r);
    expect(r.result.thrown).toBe('IO');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('the caching CPU allocator (B7)', () => {
  it('hands a block it did not allocate to the default free', () => {
    const r = child(`
      const hooks = require(${JSON.stringify(path.join(distLib, 'native', 'addon'))}).native()._testHooks;
      const before = vbp.nativeMemory().cpuCache;
      for (let i = 0; i < 20; i++) hooks.freeForeignBlock(1 << 20);
      hooks.freeForeignBlock(1000);
      const after = vbp.nativeMemory().cpuCache;
      out({ cached: after.cachedBytes - before.cachedBytes, live: after.liveBytes - before.liveBytes });`);
    expectClean(r);
    expect(r.result).toEqual({ cached: 0, live: 0 });
  });

  it('gives its cached blocks back and retries once when the system is out of memory', () => {
    const r = child(`
      const hooks = require(${JSON.stringify(path.join(distLib, 'native', 'addon'))}).native()._testHooks;
      const model = await vbp.loadModel(${JSON.stringify(hardening('wide_mlp.pt'))});
      const batch = (n) => ({ data: new Float32Array(n * 1024).fill(0.5), shape: [n, 1024] });
      await model.forward(batch(64));
      const cachedBefore = vbp.nativeMemory().cpuCache.cachedBytes;
      hooks.injectAllocationFailures(1);
      await model.forward(batch(512)); // new, larger blocks: the first system allocation fails once
      hooks.injectAllocationFailures(2);
      let second = 'no error';
      try { await model.forward(batch(4096)); } catch (e) { second = e.code; }
      hooks.injectAllocationFailures(0);
      out({ cachedBefore, second, after: (await model.forward(batch(8))).shape });`);
    expectClean(r);
    expect(r.result.cachedBefore).toBeGreaterThan(0);
    expect(r.result.second).toBe('FORWARD');
    expect(r.result.after).toEqual([8, 1024]);
  });

  it('reads VBP_CPU_CACHE_SLACK_MB as a number, clamped; anything else is the default', () => {
    const slack = (value: string): number =>
      child(`out(vbp.nativeMemory().cpuCache.slackBytes);`, { env: { VBP_CPU_CACHE_SLACK_MB: value } }).result;
    expect(slack('inf')).toBe(2 ** 50);
    expect(slack('1e300')).toBe(2 ** 50);
    expect(slack('-5')).toBe(0);
    expect(slack('abc')).toBe(16 * 2 ** 20);
    expect(slack('nan')).toBe(16 * 2 ** 20);
    expect(slack('2')).toBe(2 * 2 ** 20);
  });
});

describe('archives that lie (B8)', () => {
  const damaged = (name: string): string => hardening('damaged', name);

  it.each([
    ['storage_shifted.pt', /storage '0' needs 320 bytes but its record holds 64/],
    ['stride_wrap.pt', /reaches outside the data stored for it/],
    ['list_tensor.pt', /tensor 'extra\[0\]' reaches outside/],
    ['huge_record.pt', /does not lie within the file/],
    ['zip64_extra.pt', /damaged|not a loadable/],
  ])('%s is MODEL_LOAD naming the file', (name, message) => {
    const start = Date.now();
    const r = child(
      `try { await vbp.loadModel(${JSON.stringify(damaged(name))}); out({ thrown: 'no error' }); } catch (e) { out({ thrown: e.code, message: e.message, maxRssMb: process.resourceUsage().maxRSS / 1024 }); }`,
    );
    expectClean(r);
    expect(r.result.thrown).toBe('MODEL_LOAD');
    expect(r.result.message).toContain(damaged(name));
    expect(r.result.message).toMatch(message);
    expect(r.result.maxRssMb).toBeLessThan(1000); // nothing the size of a claimed record was allocated
    expect(Date.now() - start).toBeLessThan(30_000);
  });

  it('the undamaged sources load', async () => {
    for (const name of ['source_small.pt', 'source_list.pt']) {
      const model = await loadModel(damaged(name));
      await model.dispose();
    }
  });

  it('a checkpoint whose optimizer state is damaged is MODEL_LOAD, not INTERNAL', async () => {
    const dir = tempDir();
    const model = await loadModel(hardening('tied.pt'));
    const input = readNpy(hardening('tied_input.npy')) as Tensor<Float32Array>;
    const labels = readNpy(hardening('tied_labels.npy')).data as Int32Array;
    const data = async function* () {
      yield { input, labels };
    };
    const ckpt = path.join(dir, 'ckpt.pt');
    const options = {
      data,
      epochs: 1,
      stepsPerEpoch: 1,
      lr: 1e-2,
      schedule: 'constant' as const,
      checkpoint: { path: ckpt, every: 1 },
    };
    const first = await finetune(model, options);
    await first.model.dispose();
    // Cut the optimizer archive's data short inside an otherwise valid checkpoint.
    const out = path.join(dir, 'damaged.pt');
    spawnSync('/usr/bin/python3', [
      '-c',
      `
import zipfile, sys, io
src, dst = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(src)
entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
with zipfile.ZipFile(dst, 'w') as w:
    for name, data in entries:
        if name.endswith('extra/finetune_optimizer.pt'):
            inner = zipfile.ZipFile(io.BytesIO(data)); buf = io.BytesIO()
            with zipfile.ZipFile(buf, 'w') as iw:
                for i in inner.infolist():
                    d = inner.read(i.filename)
                    iw.writestr(i.filename, d[: len(d) // 2] if '/data/' in i.filename else d)
            data = buf.getvalue()
        w.writestr(name, data)
`,
      ckpt,
      out,
    ]);
    expect(await codeOf(finetune(model, { ...options, resume: out }))).toBe('MODEL_LOAD');
    await model.dispose();
  });
});

describe('two copies of the addon in one process (B9)', () => {
  it('load side by side and each gathers its own statistics', () => {
    const dir = tempDir();
    const r = child(`
      const addon = require('node:path').resolve(vbp.versionInfo().addon);
      const copy = require('node:path').join(${JSON.stringify(dir)}, 'copy.node');
      require('node:fs').copyFileSync(addon, copy);
      const second = { exports: {} };
      process.dlopen(second, copy);
      const file = ${JSON.stringify(fixture('deit_scripted.pt'))};
      const x = { data: new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i)), shape: [2, 3, 32, 32] };
      const ours = await vbp.gatherStats(await vbp.loadModel(file), [x]);
      const theirs = await (await second.exports.loadModel(file, 'cpu')).createStatsSession(undefined, { covariance: false, productType: 'float64', sampling: 1 });
      await theirs.run(x);
      const snapshot = await theirs.snapshot();
      out({ same: snapshot.every((s, b) => s.mean.every((v, j) => v === ours.layers[b].mean[j])) });`);
    expectClean(r);
    expect(r.result).toEqual({ same: true });
  });
});

describe('process-wide state (B10)', () => {
  it('setNumThreads() reaches pool threads that already ran work', async () => {
    const hooks = native()._testHooks;
    const { setNumThreads } = await import('../lib');
    try {
      setNumThreads(1);
      await Promise.all(Array.from({ length: 8 }, () => hooks.poolThreadCount()));
      setNumThreads(2);
      expect(await Promise.all(Array.from({ length: 8 }, () => hooks.poolThreadCount()))).toEqual(Array(8).fill(2));
    } finally {
      setNumThreads(1);
    }
  });

  it('a fine-tuning step leaves the default generator where it was', () => {
    const random = JSON.stringify(hardening('random_output.pt'));
    const draw = `const r = await vbp.loadModel(${random}); const draw = async () => Array.from((await r.forward({ data: new Float32Array(1), shape: [1] })).data); vbp.manualSeed(5);`;
    const withStep = child(`${draw}
      const a = await draw();
      const student = await vbp.loadModel(${JSON.stringify(fixture('deit_dropout_scripted.pt'))});
      const batch = { input: { data: new Float32Array(4 * 3 * 32 * 32).fill(0.3), shape: [4, 3, 32, 32] }, labels: Int32Array.from([0, 1, 2, 3]) };
      await vbp.finetune(student, { data: async function* () { yield batch; yield batch; }, epochs: 1, lr: 1e-3, schedule: 'constant', seed: 7 });
      out({ a, b: await draw() });`);
    const without = child(`${draw} out({ a: await draw(), b: await draw() });`);
    expectClean(withStep);
    expectClean(without);
    expect(without.result.b).toHaveLength(3);
    expect(withStep.result).toEqual(without.result);
  });

  it('an error the statistics tap raises inside the interpreter keeps its code (STATS)', async () => {
    const model = await loadModel(hardening('wide_input_mlp.pt'));
    try {
      const x = { data: new Float32Array(2 * 4).fill(1), shape: [2, 4] };
      expect(await codeOf(gatherStats(model, [x], { mlps: [{ fc1: 'fc1', fc2: 'fc2' }] }))).toBe('STATS');
    } finally {
      await model.dispose();
    }
  });

  it('process.exit() during a calibration ends the process cleanly', () => {
    for (let i = 0; i < 3; i++) {
      const r = child(`
        const model = await vbp.loadModel(${JSON.stringify(hardening('wide_mlp.pt'))});
        const x = { data: new Float32Array(256 * 1024).fill(0.5), shape: [256, 1024] };
        setTimeout(() => process.exit(0), 20 + 15 * ${i});
        await vbp.gatherStats(model, [x, x, x, x, x, x, x, x], { covariance: true });`);
      expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    }
  });
});

describe('half-precision models (B11)', () => {
  it('are refused for fine-tuning with NOT_TRAINABLE before any step', async () => {
    const model = await loadModel(fixture('deit_bf16.pt'));
    try {
      const batch = {
        input: { data: new Float32Array(2 * 3 * 32 * 32), shape: [2, 3, 32, 32] },
        labels: Int32Array.from([0, 1]),
      };
      const data = async function* () {
        yield batch;
      };
      await expect(finetune(model, { data, epochs: 1, lr: 1e-3, schedule: 'constant' })).rejects.toMatchObject({
        code: 'NOT_TRAINABLE',
        message: expect.stringMatching(/bfloat16|BFloat16/),
      });
    } finally {
      await model.dispose();
    }
  });
});

describe('the statistics tap is not reachable from model code (B12)', () => {
  it("a model calling torch.ops.vbp.tap does not load (the tap's name is private to this process)", async () => {
    expect(await codeOf(loadModel(hardening('damaged', 'calls_tap.pt')))).toBe('MODEL_LOAD');
  });
});

describe('files from another PyTorch (issue 23)', () => {
  const sdpa = path.join(repoRoot, 'test', 'python', 'corpus', 'torch2-models', 'sdpa-model.pt');

  it('a model saved by PyTorch 2.13 with scaled_dot_product_attention: LibTorch 1.x says it needs a newer one, 2.x runs it', async () => {
    const { versionInfo } = await import('../lib');
    if (versionInfo().torch.startsWith('1.')) {
      await expect(loadModel(sdpa)).rejects.toMatchObject({
        code: 'MODEL_LOAD',
        message: expect.stringMatching(/newer PyTorch than this LibTorch \(1\.13.*build torch-vbp against/s),
      });
    } else {
      const model = await loadModel(sdpa);
      const q = { data: new Float32Array(2 * 3 * 4).fill(0.5), shape: [2, 3, 4] };
      expect(((await model.forward(q)) as { shape: number[] }).shape).toEqual([2, 3, 4]);
      await model.dispose();
    }
  });
});
