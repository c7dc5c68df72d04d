/** The `vbp` command run as a user runs it, in a child process: every command, its outputs and its errors. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import {
  formatNpy,
  loadModel,
  loadPlan,
  Stats,
  plan,
  prune,
  gatherStats,
  versionInfo,
  readIdx,
  writeTensors,
  DEBIAN_FASHION_MNIST,
} from '../../lib';
import {
  calibrationBatches,
  fixture,
  json,
  maxAbsDiff,
  maxRelDiff,
  npy,
  repoRoot,
  sha,
  tempDir,
  vbp,
} from '../helpers';

const dir = tempDir('torch-vbp-cli-');
const model = fixture('deit_scripted.pt'); // no model card: data commands need --raw (the fixtures are already normalised)
const labels = path.join(dir, 'labels.npy');

beforeAll(() => {
  fs.writeFileSync(
    labels,
    formatNpy({ data: BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i % 10)), shape: [64] }),
  );
});

describe('vbp commands', () => {
  it('--help works for the program and every command; --version names LibTorch and CUDA', () => {
    const top = vbp(['--help']);
    expect(top.status).toBe(0);
    for (const command of ['inspect', 'stats', 'merge', 'prune', 'eval', 'bench', 'demo']) {
      expect(top.stdout).toContain(command);
      const help = vbp([command, '--help']);
      expect(help.status).toBe(0);
      expect(help.stdout).toContain(`Usage: vbp ${command}`);
    }
    expect(vbp(['stats', '--help']).stdout).toMatch(/--limit <n>\s+calibration items \(default: "2048"\)/);
    const version = vbp(['--version']);
    expect(version.status).toBe(0);
    const info = versionInfo();
    expect(version.stdout).toContain(
      `torch-vbp ${JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version}`,
    );
    expect(version.stdout).toContain(`LibTorch ${info.torch}, ${info.cuda ? 'CUDA' : 'CPU only (no CUDA)'}`);
  });

  it('inspect lists MLP blocks, parameters and MACs (--json), counting a block as prune does', async () => {
    const r = vbp(['inspect', model, '--input-shape', '3,32,32', '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.parameters).toBe(95530);
    expect(out.macs).toBe(json<Record<string, number>>('macs_deit.json').total);
    expect(out.mlps.map((m: { fc1: string }) => m.fc1)).toEqual([
      'blocks.0.mlp.fc1',
      'blocks.1.mlp.fc1',
      'blocks.2.mlp.fc1',
    ]);
    expect(out.mlps[0].macs).toBe(17 * 192 * 96);
    // All parameters of fc1 and fc2 (weights and biases): 48*192 + 192 + 192*48 + 48.
    expect(out.mlps[0].parameters).toBe(18672);
    const m = await loadModel(model);
    const { model: pruned, report } = await prune(
      m,
      plan(await gatherStats(m, calibrationBatches(0, 1)), { ratio: 0 }),
    );
    expect(report.layers.map((l) => l.paramsBefore)).toEqual(out.mlps.map((b: { parameters: number }) => b.parameters));
    await Promise.all([m.dispose(), pruned.dispose()]);
    const human = vbp(['inspect', model]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^fc1\s+fc2\s+in -> hidden -> out/m);
    expect(human.stdout).toContain('blocks.2.mlp.fc1');
  });

  it("stats writes a statistics file equal to the library's", async () => {
    const out = path.join(dir, 'stats.safetensors');
    const r = vbp([
      'stats',
      model,
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--batch-size',
      '16',
      '--no-shuffle',
      '--out',
      out,
      '--json',
      '--threads',
      '1',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).info.items).toBe(64);
    const fromCli = await Stats.load(out);
    const m = await loadModel(model);
    const direct = await gatherStats(m, calibrationBatches());
    await m.dispose();
    fromCli.layers.forEach((l, i) => expect(Array.from(l.m2)).toEqual(Array.from(direct.layers[i].m2)));
  });

  it('merge combines shards exactly into what one pass gives', async () => {
    const halves = [0, 1].map((h) => path.join(dir, `shard${h}.npy`));
    const calib = npy('calib.npy');
    halves.forEach((file, h) =>
      fs.writeFileSync(
        file,
        formatNpy({
          data: (calib.data as Float32Array).slice(h * 32 * 3072, (h + 1) * 32 * 3072),
          shape: [32, 3, 32, 32],
        }),
      ),
    );
    const shards = halves.map((file, h) => {
      const out = path.join(dir, `shard${h}.safetensors`);
      expect(
        vbp(['stats', model, '--data', file, '--raw', '--batch-size', '16', '--no-shuffle', '--out', out]).status,
      ).toBe(0);
      return out;
    });
    const merged = path.join(dir, 'merged.safetensors');
    const r = vbp(['merge', ...shards, '--out', merged]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('merged 2 statistics files (64 items');
    const whole = await Stats.load(path.join(dir, 'stats.safetensors'));
    const all = await Stats.load(merged);
    all.layers.forEach((l, i) => {
      expect(l.count).toBe(whole.layers[i].count);
      expect(maxRelDiff(all.variance(i), whole.variance(i))).toBeLessThanOrEqual(1e-9);
    });
    const other = path.join(dir, 'other.safetensors');
    expect(vbp(['stats', fixture('vit_torchvision.pt'), '--data', halves[0], '--raw', '--out', other]).status).toBe(0);
    const mixed = vbp(['merge', shards[0], other, '--out', path.join(dir, 'mixed.safetensors')]);
    expect(mixed.status).toBe(1);
    expect(mixed.stderr).toMatch(/\[STATS\].*another model/);
  });

  it('merge refuses to count a shard twice: the same file, a copy, or two files of one --shard', async () => {
    const shard0 = path.join(dir, 'shard0.safetensors');
    const copy = path.join(dir, 'shard0-copy.safetensors');
    fs.copyFileSync(shard0, copy);
    const link = path.join(dir, 'shard0-link.safetensors');
    fs.symlinkSync(shard0, link);
    for (const [files, message] of [
      [
        [shard0, shard0],
        /'.*shard0\.safetensors' is the same file as '.*shard0\.safetensors': merging it twice would count its items twice/,
      ],
      [[shard0, link], /is the same file as/],
      [[shard0, copy], /'.*shard0-copy\.safetensors' has the same contents as '.*shard0\.safetensors'/],
    ] as Array<[string[], RegExp]>) {
      const r = vbp(['merge', ...files, '--out', path.join(dir, 'twice.safetensors')]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    // Shards of one job carry their id: gathering shard 0/2 twice (e.g. a rerun of one array task) is refused.
    const runs = [0, 1].map((n) => {
      const out = path.join(dir, `job-${n}.safetensors`);
      const args = [
        'stats',
        model,
        '--data',
        fixture('calib.npy'),
        '--raw',
        '--batch-size',
        '16',
        '--shard',
        '0/2',
        '--out',
        out,
      ];
      expect(vbp(n === 0 ? args : [...args, '--limit', '16']).status).toBe(0);
      return out;
    });
    const same = vbp(['merge', ...runs, '--out', path.join(dir, 'twice.safetensors')]);
    expect(same.status).toBe(2);
    expect(same.stderr).toMatch(/both hold shard 0\/2 \(vbp stats --shard 0\/2\)/);
    expect(fs.existsSync(path.join(dir, 'twice.safetensors'))).toBe(false);
    const one = path.join(dir, 'job-1of2.safetensors');
    expect(
      vbp([
        'stats',
        model,
        '--data',
        fixture('calib.npy'),
        '--raw',
        '--batch-size',
        '16',
        '--shard',
        '1/2',
        '--out',
        one,
      ]).status,
    ).toBe(0);
    const merged = path.join(dir, 'job-all.safetensors');
    expect(vbp(['merge', runs[0], one, '--out', merged]).status).toBe(0);
    expect((await Stats.load(runs[0])).info).toMatchObject({ shard: { index: 0, count: 2 } });
    expect((await Stats.load(merged)).info).not.toHaveProperty('shard');
  });

  it('prune from --stats writes a smaller model and the plan the library makes, and says what it achieved against what was asked', async () => {
    const out = path.join(dir, 'pruned.pt');
    const planFile = path.join(dir, 'plan.json');
    const r = vbp([
      'prune',
      model,
      '--stats',
      path.join(dir, 'stats.safetensors'),
      '--ratio',
      '0.5',
      '--out',
      out,
      '--plan-out',
      planFile,
      '--json',
    ]);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.totals.pruned).toBe(288);
    const expected = plan(await Stats.load(path.join(dir, 'stats.safetensors')), { ratio: 0.5 });
    expect((await loadPlan(planFile)).layers).toEqual(expected.layers);
    const pruned = await loadModel(out);
    expect(pruned.parameterCount()).toBe(report.report.parameters.after);
    await pruned.dispose();
    const human = vbp([
      'prune',
      model,
      '--stats',
      path.join(dir, 'stats.safetensors'),
      '--ratio',
      '0.2',
      '--round-to',
      '64',
      '--out',
      path.join(dir, 'rounded.pt'),
    ]);
    expect(human.status).toBe(0);
    // 20 % of 576 is 115.2: widths in multiples of 64 reach it with 128 neurons, never with 0.
    expect(human.stdout).toMatch(/asked 20\.0 % of the MLP neurons, removed 22\.2 % \(128 of 576 neurons/);
  });

  it('prune --plan applies a saved plan: the same model as pruning from the statistics', async () => {
    const out = path.join(dir, 'from-plan.pt');
    const r = vbp(['prune', model, '--plan', path.join(dir, 'plan.json'), '--out', out]);
    expect(r.status).toBe(0);
    const a = await loadModel(out);
    const b = await loadModel(path.join(dir, 'pruned.pt'));
    const input = npy('input_b4.npy');
    const [ya, yb] = [await a.forward(input), await b.forward(input)] as Array<{ data: Float32Array }>;
    expect(maxAbsDiff(ya.data, yb.data)).toBe(0);
    await Promise.all([a.dispose(), b.dispose()]);
    const mixed = vbp([
      'prune',
      model,
      '--plan',
      path.join(dir, 'plan.json'),
      '--ratio',
      '0.5',
      '--out',
      path.join(dir, 'x.pt'),
    ]);
    expect(mixed.status).toBe(2);
    expect(mixed.stderr).toContain('--ratio: cannot be combined with --plan');
  });

  it('prune with --data, a percentage, another criterion and --no-compensation', () => {
    const out = path.join(dir, 'pruned-none.pt');
    const r = vbp([
      'prune',
      model,
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--ratio',
      '35%',
      '--no-compensation',
      '--criterion',
      'magnitude',
      '--out',
      out,
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('compensation none');
    expect(r.stdout).toContain('magnitude');
    expect(fs.existsSync(out)).toBe(true);
    const zero = vbp([
      'prune',
      model,
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--ratio',
      '0',
      '--out',
      path.join(dir, 'zero.pt'),
    ]);
    expect(zero.status).toBe(0);
    expect(zero.stdout).toContain('(0.0 %)');
    expect(zero.stdout).not.toContain('-0.0 %');
  });

  it('eval reports top-1/top-5 on labelled .npy data', () => {
    const r = vbp(['eval', model, '--data', fixture('calib.npy'), '--raw', '--labels', labels, '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.items).toBe(64);
    expect(out.top5).toBeGreaterThanOrEqual(out.top1);
  });

  it('bench times the given batch sizes', () => {
    const r = vbp([
      'bench',
      model,
      '--input-shape',
      '3,32,32',
      '--batch-sizes',
      '1,4',
      '--runs',
      '3',
      '--warmup',
      '1',
      '--json',
    ]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.results.map((x: { batchSize: number }) => x.batchSize)).toEqual([1, 4]);
    expect(out.results[0].medianMs).toBeGreaterThan(0);
  });

  it("check's table says why an output failed when the structures differ, not only --json", async () => {
    const m = await loadModel(model);
    const x = npy('input_b4.npy');
    const y = await m.forward(x);
    await m.dispose();
    const inputs = path.join(dir, 'check-in.pt');
    await writeTensors(inputs, x);
    const cases: Array<[string, unknown, RegExp]> = [
      [
        'list',
        [y, y],
        /^\[0\], \[1\]: the model gives a tensor \[4, 10\] at the output, PyTorch's file a list\/tuple of 2$/m,
      ],
      [
        'dict',
        { logits: y },
        /^\['logits'\]: the model gives a tensor \[4, 10\] at the output, PyTorch's file a dict with keys 'logits'$/m,
      ],
    ];
    for (const [name, expected, why] of cases) {
      const file = path.join(dir, `check-${name}.pt`);
      await writeTensors(file, expected as Parameters<typeof writeTensors>[1]);
      const r = vbp(['check', model, '--inputs', inputs, '--expected', file]);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(why);
      expect(r.stdout).toMatch(/float32\s+-\s+-\s+-\s+-\s+FAIL \(below\)/); // no "0 / 40 mismatched" for a row never compared
      const json = JSON.parse(vbp(['check', model, '--inputs', inputs, '--expected', file, '--json']).stdout);
      // The table says what --json says.
      for (const o of json.outputs as Array<{ problem: string }>) expect(r.stdout).toContain(o.problem);
    }
  });

  it('never overwrites the input model or an existing file, and writes nothing on failure', () => {
    const copy = path.join(dir, 'input.pt');
    fs.copyFileSync(model, copy);
    const before = sha(copy);
    const same = vbp([
      'prune',
      copy,
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--ratio',
      '0.5',
      '--out',
      copy,
      '--force',
    ]);
    expect(same.status).toBe(2);
    expect(same.stderr).toContain('OUTPUT_EXISTS');
    const existing = path.join(dir, 'exists.pt');
    fs.writeFileSync(existing, 'keep me');
    const r = vbp(['prune', copy, '--data', fixture('calib.npy'), '--raw', '--ratio', '0.5', '--out', existing]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/OUTPUT_EXISTS.*--force/);
    expect(fs.readFileSync(existing, 'utf8')).toBe('keep me');
    expect(sha(copy)).toBe(before);
    const bad = vbp([
      'prune',
      copy,
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--ratio',
      '0.999',
      '--out',
      path.join(dir, 'never.pt'),
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('[PLAN]');
    expect(fs.existsSync(path.join(dir, 'never.pt'))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-') || f.includes('probe'))).toEqual([]);
  });

  it('gives clear errors and exit codes for missing files and bad arguments (2: bad usage and unreadable inputs, 1: failures)', () => {
    const missing = vbp(['inspect', path.join(dir, 'missing.pt')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^vbp: error \[MODEL_NOT_FOUND\]: .*missing\.pt/);
    const notModel = vbp(['inspect', fixture('calib.npy')]);
    expect(notModel.status).toBe(2);
    expect(notModel.stderr).toContain('[MODEL_LOAD]');
    const missingTeacher = vbp([
      'finetune',
      model,
      '--teacher',
      fixture('calib.npy'),
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--labels',
      labels,
      '--out',
      path.join(dir, 't.pt'),
    ]);
    expect(missingTeacher.status).toBe(2);
    expect(missingTeacher.stderr).toMatch(/\[MODEL_LOAD\]: --teacher: /);
    const missingStats = vbp([
      'prune',
      model,
      '--stats',
      path.join(dir, 'missing.safetensors'),
      '--ratio',
      '0.5',
      '--out',
      path.join(dir, 'p.pt'),
    ]);
    expect(missingStats.status).toBe(2);
    const noData = vbp(['stats', model, '--out', path.join(dir, 's2')]);
    expect(noData.status).toBe(2);
    expect(noData.stderr).toContain('--data');
    const missingData = vbp(['stats', model, '--data', path.join(dir, 'nope.npy'), '--out', path.join(dir, 's3')]);
    expect(missingData.status).toBe(2);
    expect(missingData.stderr).toMatch(/\[IO\]: --data: .*nope\.npy' does not exist/);
    const noSource = vbp(['prune', model, '--ratio', '0.5', '--out', path.join(dir, 'p.pt')]);
    expect(noSource.status).toBe(2);
    const unknown = vbp(['prune', model, '--bogus', '--out', path.join(dir, 'p.pt')]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--bogus'");
    const badDevice = vbp(['inspect', model, '--device', 'tpu']);
    expect(badDevice.status).toBe(2);
    expect(badDevice.stderr).toContain('--device');
    const corruptStats = path.join(dir, 'corrupt.safetensors');
    fs.writeFileSync(corruptStats, Buffer.from([1, 2, 3]));
    const corrupt = vbp(['prune', model, '--stats', corruptStats, '--ratio', '0.5', '--out', path.join(dir, 'p.pt')]);
    expect(corrupt.status).toBe(2);
    expect(corrupt.stderr).toContain('[STATS]: --stats: ');
    const corruptPlan = path.join(dir, 'corrupt.json');
    fs.writeFileSync(corruptPlan, '{');
    const badPlan = vbp(['prune', model, '--plan', corruptPlan, '--out', path.join(dir, 'p.pt')]);
    expect(badPlan.status).toBe(2);
    expect(badPlan.stderr).toContain('[PLAN]: --plan: ');
    const badInputs = vbp(['check', model, '--inputs', corruptPlan, '--expected', corruptPlan]);
    expect(badInputs.status).toBe(2);
    expect(badInputs.stderr).toContain('--inputs: ');
    // Readable inputs that do not fit the job are failures of the work: exit 1.
    const other = vbp([
      'prune',
      fixture('vit_torchvision.pt'),
      '--stats',
      path.join(dir, 'stats.safetensors'),
      '--ratio',
      '0.5',
      '--out',
      path.join(dir, 'o.pt'),
    ]);
    expect(other.status).toBe(1);
  });

  it('the README states the exit-code rule', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    expect(readme).toMatch(/### Exit codes\n[\s\S]*\| 2 \| bad usage[\s\S]*\| 1 \|[\s\S]*\| 130 \/ 143 \|/);
  });
});

describe('no silent wrong results', () => {
  const fmnist = path.join(repoRoot, 'models', 'deit_fmnist.pt');

  it('.npy items are normalised like IDX data: raw uint8 pixels and pre-normalised floats evaluate alike', () => {
    // The first 500 test images as [500, 28, 28] uint8 pixels (rank 3: the card gives the item shape [1, 28, 28]),
    // and the same images normalised, as [500, 1, 28, 28] float32.
    const out = JSON.parse(
      vbp(['eval', fmnist, '--data', 'fashion-mnist', '--limit', '500', '--batch-size', '500', '--json']).stdout,
    );
    const pixels = new Uint8Array(500 * 784);
    const labelsOut = new BigInt64Array(500);
    const idx = readIdxPixels();
    pixels.set(idx.images.subarray(0, 500 * 784));
    idx.labels.subarray(0, 500).forEach((l, i) => (labelsOut[i] = BigInt(l)));
    const u8 = path.join(dir, 'x_u8.npy');
    const f32 = path.join(dir, 'x_f32.npy');
    const y = path.join(dir, 'y.npy');
    fs.writeFileSync(u8, formatNpy({ data: pixels, shape: [500, 28, 28] }));
    fs.writeFileSync(
      f32,
      formatNpy({ data: Float32Array.from(pixels, (p) => (p / 255 - 0.286) / 0.353), shape: [500, 1, 28, 28] }),
    );
    fs.writeFileSync(y, formatNpy({ data: labelsOut, shape: [500] }));
    const fromU8 = JSON.parse(
      vbp(['eval', fmnist, '--data', u8, '--labels', y, '--mean', '0.286', '--std', '0.353', '--json']).stdout,
    );
    const fromCard = JSON.parse(vbp(['eval', fmnist, '--data', u8, '--labels', y, '--json']).stdout);
    const fromF32 = JSON.parse(vbp(['eval', fmnist, '--data', f32, '--labels', y, '--raw', '--json']).stdout);
    expect(fromU8.correct1).toBe(fromF32.correct1);
    expect(fromCard.correct1).toBe(fromF32.correct1);
    expect(fromU8.correct1).toBe(out.correct1);
    expect(fromU8.top1).toBeGreaterThan(0.85);
  });

  it('float .npy pixels in 0..255 are refused under a normalisation unless --scale or --raw says what they are (64.8 % -> refused; 89.4 % with --scale 255)', () => {
    const idx = readIdxPixels();
    const x255 = path.join(dir, 'x_255.npy');
    const xNorm = path.join(dir, 'x_norm.npy');
    const y = path.join(dir, 'y_255.npy');
    const pixels = Float32Array.from(idx.images.subarray(0, 500 * 784));
    fs.writeFileSync(x255, formatNpy({ data: pixels, shape: [500, 1, 28, 28] }));
    fs.writeFileSync(xNorm, formatNpy({ data: pixels.map((p) => (p / 255 - 0.286) / 0.353), shape: [500, 1, 28, 28] }));
    fs.writeFileSync(
      y,
      formatNpy({ data: BigInt64Array.from(idx.labels.subarray(0, 500), (l) => BigInt(l)), shape: [500] }),
    );
    const refused = vbp(['eval', fmnist, '--data', x255, '--labels', y, '--json']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(
      /\[DATA\]: --data: '.*x_255\.npy' holds float32 values from 0 to 255, but the normalisation \(mean \[0\.286\], std \[0\.353\]\) expects pixels scaled to \[0, 1\]: if they are pixels in 0\.\.255, pass --scale 255/,
    );
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 'DATA', exitCode: 2 });
    const normalisedTwice = vbp(['eval', fmnist, '--data', xNorm, '--labels', y]);
    expect(normalisedTwice.status).toBe(2);
    expect(normalisedTwice.stderr).toContain('if they are already normalised, pass --raw');
    const scaled = JSON.parse(vbp(['eval', fmnist, '--data', x255, '--labels', y, '--scale', '255', '--json']).stdout);
    const idxRun = JSON.parse(vbp(['eval', fmnist, '--data', 'fashion-mnist', '--limit', '500', '--json']).stdout);
    expect(scaled.correct1).toBe(idxRun.correct1);
    expect(scaled.top1).toBeCloseTo(0.894, 3);
    // Said explicitly, the values are taken as they are.
    const asIs = vbp(['eval', fmnist, '--data', x255, '--labels', y, '--scale', '1', '--json']);
    expect(asIs.status).toBe(0);
    expect(JSON.parse(asIs.stdout).top1).toBeLessThan(0.7);
    expect(vbp(['eval', fmnist, '--data', xNorm, '--labels', y, '--raw', '--json']).status).toBe(0);
    expect(vbp(['eval', fmnist, '--data', 'fashion-mnist', '--scale', '255']).stderr).toContain(
      '--scale: is for .npy data only',
    );
  });

  it('a normalisation for other channels says what to pass (never "give 1 or 1")', () => {
    const rgb = path.join(dir, 'rgb-card.pt');
    fs.copyFileSync(model, rgb);
    fs.writeFileSync(
      path.join(dir, 'rgb-card.json'),
      JSON.stringify({ inputShape: [3, 32, 32], mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2] }),
    );
    const r = vbp(['eval', rgb, '--data', 'fashion-mnist', '--limit', '10']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      "the model card's mean/std: mean has 3 values but the items have 1 channel: give one value (the model card is for 3-channel items: pass --mean/--std for 1-channel items)",
    );
    expect(r.stderr).not.toMatch(/give 1 or 1/);
  });

  it('image folders: classes that cannot be folder names match by a sanitised name, or by --class-map; the error says how', async () => {
    const root = path.join(dir, 'fmnist-images');
    const idx = readIdxPixels();
    const folders = ['tee', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'ankle-boot'];
    for (let i = 0; i < 40; i++) {
      fs.mkdirSync(path.join(root, folders[idx.labels[i]]), { recursive: true });
      await sharp(Buffer.from(idx.images.subarray(i * 784, (i + 1) * 784)), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .png()
        .toFile(path.join(root, folders[idx.labels[i]], `${i}.png`));
    }
    const refused = vbp(['eval', fmnist, '--data', root, '--resize', '28']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(
      /class folder\(s\) 'tee' match none of the model's classes \('T-shirt\/top', .*\): name each folder as its class \(a class such as 'T-shirt\/top' matches a folder 't_shirt_top'.*map the folders to classes with --class-map FILE\.json holding e\.g\. \{"tee": "T-shirt\/top"\}/,
    );
    const map = path.join(dir, 'class-map.json');
    fs.writeFileSync(map, JSON.stringify({ tee: 'T-shirt/top' }));
    const mapped = JSON.parse(
      vbp(['eval', fmnist, '--data', root, '--resize', '28', '--class-map', map, '--json']).stdout,
    );
    const idxRun = JSON.parse(vbp(['eval', fmnist, '--data', 'fashion-mnist', '--limit', '40', '--json']).stdout);
    expect(mapped.correct1).toBe(idxRun.correct1); // 'ankle-boot' matched 'Ankle boot' by its sanitised name
    fs.renameSync(path.join(root, 'tee'), path.join(root, 'T-shirt_top'));
    expect(JSON.parse(vbp(['eval', fmnist, '--data', root, '--resize', '28', '--json']).stdout).correct1).toBe(
      idxRun.correct1,
    );
    fs.writeFileSync(map, JSON.stringify({ 'T-shirt_top': 'T-shirt' }));
    const wrong = vbp(['eval', fmnist, '--data', root, '--resize', '28', '--class-map', map]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(
      /\[DATA\]: --class-map: folder 'T-shirt_top' maps to 'T-shirt', which is not among the model's classes/,
    );
    fs.writeFileSync(map, '[1, 2]');
    expect(vbp(['eval', fmnist, '--data', root, '--class-map', map]).stderr).toMatch(
      /--class-map: .* must hold one JSON object from folder name to class name or class index/,
    );
  });

  it('eval of .npy data without --labels is refused, naming --labels', () => {
    const r = vbp(['eval', model, '--data', fixture('calib.npy'), '--raw']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/\[INVALID_ARGUMENT\]: --labels: is required/);
  });

  it("normalisation is checked against the model's channels before any work", () => {
    for (const [args, option] of [
      [['--std', '0', '--mean', '0.286'], '--std'],
      [['--mean', '0.286,0.3', '--std', '0.353'], '--mean'],
      [['--mean', '0.286'], '--std'],
      [['--raw', '--mean', '0.1', '--std', '0.2'], '--raw'],
    ] as Array<[string[], string]>) {
      const out = path.join(dir, 'norm.safetensors');
      const r = vbp(['stats', fmnist, '--data', 'fashion-mnist', ...args, '--out', out]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`${option}:`);
      expect(fs.existsSync(out)).toBe(false);
    }
  });

  it('an output that cannot be written is refused before any work; prune writes all its outputs or none', () => {
    const started = Date.now();
    const unwritable = vbp([
      'stats',
      fmnist,
      '--data',
      'fashion-mnist',
      '--limit',
      '60000',
      '--out',
      '/sys/vbp-stats.safetensors',
    ]);
    expect(unwritable.status).toBe(2);
    expect(unwritable.stderr).toMatch(/\[IO\]: --out: cannot write .*does not take new files/);
    expect(Date.now() - started).toBeLessThan(8000); // a calibration of 60,000 images takes minutes
    const ok = path.join(dir, 'ok.pt');
    const r = vbp([
      'prune',
      model,
      '--stats',
      path.join(dir, 'stats.safetensors'),
      '--ratio',
      '0.5',
      '--out',
      ok,
      '--plan-out',
      '/sys/vbp-plan.json',
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--plan-out');
    expect(fs.existsSync(ok)).toBe(false);
    const folder = vbp([
      'prune',
      model,
      '--stats',
      path.join(dir, 'stats.safetensors'),
      '--ratio',
      '0.5',
      '--out',
      dir,
    ]);
    expect(folder.status).toBe(2);
    expect(folder.stderr).toMatch(/--out: cannot write .*: it is a folder/);
  });

  it('messages point the right way', () => {
    const npz = path.join(dir, 'x.npz');
    fs.writeFileSync(npz, 'PK');
    const r1 = vbp(['eval', model, '--data', npz]);
    expect(r1.status).toBe(2);
    expect(r1.stderr).toMatch(/--data: '.*x\.npz' is a file of a type torch-vbp does not read \(\.npz\)/);
    const other = vbp([
      'prune',
      fixture('vit_torchvision.pt'),
      '--stats',
      path.join(dir, 'stats.safetensors'),
      '--ratio',
      '0.5',
      '--out',
      path.join(dir, 'o.pt'),
    ]);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/\[STATS\]: the statistics '.*stats\.safetensors' belong to another model/);
    for (const shape of ['1,0,28', '1,28', 'a,b']) {
      const r = vbp(['inspect', fmnist, '--input-shape', shape]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('--input-shape');
    }
    const noHint = vbp(['inspect', model, '--input-shape', '3,28,28']);
    expect(noHint.status).toBe(1);
    expect(noHint.stderr).toMatch(
      /\[INPUT_SHAPE\].*items of shape \[3,28,28\] from --input-shape do not fit the model/,
    );
    for (const [args, option] of [
      [['--ratio', '1.5'], '--ratio'],
      [['--ratio', 'abc'], '--ratio'],
      [['--ratio', '0.5', '--device', 'cuda:abc'], '--device'],
    ] as Array<[string[], string]>) {
      const r = vbp([
        'prune',
        model,
        '--stats',
        path.join(dir, 'stats.safetensors'),
        ...args,
        '--out',
        path.join(dir, 'p.pt'),
      ]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`${option}:`);
    }
  });

  it('image folders: enumerated options are checked, bad images stop the run unless skipped (and counted), a size mismatch gets a hint', async () => {
    const root = path.join(dir, 'images');
    for (const [cls, name] of [
      ['cat', 'a.png'],
      ['cat', 'b.png'],
      ['dog', 'c.png'],
    ]) {
      fs.mkdirSync(path.join(root, cls), { recursive: true });
      await sharp({
        create: { width: 40, height: 36, channels: 3, background: { r: 10 * name.charCodeAt(0), g: 80, b: 160 } },
      })
        .png()
        .toFile(path.join(root, cls, name));
    }
    fs.writeFileSync(path.join(root, 'dog', 'broken.png'), 'not a png');
    const base = ['eval', model, '--data', root, '--raw', '--crop', '32'];
    for (const [args, option] of [
      [['--interpolation', 'lanczos9'], '--interpolation'],
      [['--channels', '2'], '--channels'],
      [['--resize', '16'], '--resize'],
      [['--split', 'test'], '--split'],
    ] as Array<[string[], string]>) {
      const r = vbp([...base, ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`${option}:`);
    }
    const stopped = vbp(base);
    expect(stopped.status).toBe(1);
    expect(stopped.stderr).toMatch(/\[DATA\]: cannot decode image '.*broken\.png'/);
    const skipped = vbp([...base, '--skip-bad-images', '--json']);
    expect(skipped.status).toBe(0);
    expect(JSON.parse(skipped.stdout)).toMatchObject({ items: 3, skipped: 1 });
    // The fixture takes 32 px images; without --crop (and no card) images are cropped to 224.
    const mismatch = vbp(['eval', model, '--data', root, '--raw', '--skip-bad-images']);
    expect(mismatch.status).toBe(1);
    expect(mismatch.stderr).toMatch(/\[INPUT_SHAPE\].*the data gives items of shape \[3,224,224\].*--crop N/);
  });

  it('eval has no shuffling options that would do nothing', () => {
    for (const flag of [['--seed', '3'], ['--no-shuffle']]) {
      const r = vbp(['eval', model, '--data', fixture('calib.npy'), '--raw', '--labels', labels, ...flag]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`unknown option '${flag[0]}'`);
    }
  });

  it('--threads above the core count is warned about', () => {
    const cores = os.availableParallelism();
    const r = vbp(['inspect', model, '--threads', String(cores + 1)]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`--threads ${cores + 1} is more than the ${cores} core(s) of this machine`);
  });

  it('Ctrl-C during a progress bar gives the terminal its cursor back', async () => {
    const out = path.join(dir, 'interrupted.safetensors');
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'bin', 'vbp.js'),
        'stats',
        fmnist,
        '--data',
        'fashion-mnist',
        '--limit',
        '60000',
        '--out',
        out,
      ],
      {
        env: { ...process.env, VBP_PROGRESS: '1' },
      },
    );
    let stderr = '';
    let interrupts = 0;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      // Twice, as an impatient user does: the second must not kill the process before the terminal is restored.
      if (stderr.includes('calibrating') && interrupts < 2) {
        interrupts++;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(stderr.endsWith('\x1b[?25h\x1b[?7h')).toBe(true); // cursor and line wrap back on
    expect(fs.existsSync(out)).toBe(false);
  });
});

function readIdxPixels(): { images: Uint8Array; labels: Uint8Array } {
  return {
    images: readIdx(path.join(DEBIAN_FASHION_MNIST, 't10k-images-idx3-ubyte.gz')).data,
    labels: readIdx(path.join(DEBIAN_FASHION_MNIST, 't10k-labels-idx1-ubyte.gz')).data,
  };
}
