/** Issue 4: the `vbp` command run as a user runs it, in a child process. */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { formatNpy, loadModel, loadPlan, Stats, plan, gatherStats } from '../lib';
import { calibrationBatches, fixture, json, repoRoot, tempDir } from './helpers';

const bin = path.join(repoRoot, 'bin', 'vbp.js');
const dir = tempDir('torch-vbp-cli-');
const model = fixture('deit_scripted.pt');

function vbp(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function sha(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

beforeAll(() => {
  // Labels for the calibration images: the class the fixture model predicts (any labels would do).
  fs.writeFileSync(path.join(dir, 'labels.npy'), formatNpy({ data: BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i % 10)), shape: [64] }));
});

describe('vbp CLI', () => {
  it('--help works for the program and every command', () => {
    const top = vbp('--help');
    expect(top.status).toBe(0);
    for (const command of ['inspect', 'stats', 'prune', 'eval', 'bench', 'demo']) {
      expect(top.stdout).toContain(command);
      const help = vbp(command, '--help');
      expect(help.status).toBe(0);
      expect(help.stdout).toContain(`Usage: vbp ${command}`);
    }
    expect(vbp('--version').stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version);
  });

  it('inspect lists MLP blocks, parameters and MACs (--json)', () => {
    const r = vbp('inspect', model, '--input-shape', '3,32,32', '--json');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.parameters).toBe(95530);
    expect(out.macs).toBe(json<Record<string, number>>('macs_deit.json').total);
    expect(out.mlps.map((m: { fc1: string }) => m.fc1)).toEqual(['blocks.0.mlp.fc1', 'blocks.1.mlp.fc1', 'blocks.2.mlp.fc1']);
    expect(out.mlps[0].macs).toBe(17 * 192 * 96);
    const human = vbp('inspect', model);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('blocks.2.mlp.fc1');
  });

  it('stats writes a statistics file equal to the library\'s', async () => {
    const out = path.join(dir, 'stats.safetensors');
    const r = vbp('stats', model, '--data', fixture('calib.npy'), '--batch-size', '16', '--no-shuffle', '--out', out, '--json', '--threads', '1');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).info.items).toBe(64);
    const fromCli = await Stats.load(out);
    const m = await loadModel(model);
    const direct = await gatherStats(m, calibrationBatches());
    m.dispose();
    fromCli.layers.forEach((l, i) => expect(Array.from(l.m2)).toEqual(Array.from(direct.layers[i].m2)));
  });

  it('prune from --stats writes a smaller model and the plan the library would make', async () => {
    const out = path.join(dir, 'pruned.pt');
    const planFile = path.join(dir, 'plan.json');
    const r = vbp('prune', model, '--stats', path.join(dir, 'stats.safetensors'), '--ratio', '0.5', '--out', out, '--plan-out', planFile, '--json');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.totals.pruned).toBe(288);
    const expected = plan(await Stats.load(path.join(dir, 'stats.safetensors')), { ratio: 0.5 });
    expect((await loadPlan(planFile)).layers).toEqual(expected.layers);
    const pruned = await loadModel(out);
    expect(pruned.parameterCount()).toBe(report.report.parameters.after);
    pruned.dispose();
  });

  it('prune with --data, a percentage and --no-compensation', () => {
    const out = path.join(dir, 'pruned-none.pt');
    const r = vbp('prune', model, '--data', fixture('calib.npy'), '--ratio', '35%', '--no-compensation', '--criterion', 'magnitude', '--out', out);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('compensation none');
    expect(r.stdout).toContain('magnitude');
    expect(fs.existsSync(out)).toBe(true);
  });

  it('eval reports top-1/top-5 on labelled .npy data', () => {
    const r = vbp('eval', model, '--data', fixture('calib.npy'), '--labels', path.join(dir, 'labels.npy'), '--json');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.items).toBe(64);
    expect(out.top5).toBeGreaterThanOrEqual(out.top1);
  });

  it('bench times the given batch sizes', () => {
    const r = vbp('bench', model, '--input-shape', '3,32,32', '--batch-sizes', '1,4', '--runs', '3', '--warmup', '1', '--json');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.results.map((x: { batchSize: number }) => x.batchSize)).toEqual([1, 4]);
    expect(out.results[0].medianMs).toBeGreaterThan(0);
  });

  it('never overwrites the input model or an existing file, and writes nothing on failure', () => {
    const copy = path.join(dir, 'input.pt');
    fs.copyFileSync(model, copy);
    const before = sha(copy);
    const same = vbp('prune', copy, '--data', fixture('calib.npy'), '--ratio', '0.5', '--out', copy, '--force');
    expect(same.status).toBe(1);
    expect(same.stderr).toContain('OUTPUT_EXISTS');
    const existing = path.join(dir, 'exists.pt');
    fs.writeFileSync(existing, 'keep me');
    const r = vbp('prune', copy, '--data', fixture('calib.npy'), '--ratio', '0.5', '--out', existing);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/OUTPUT_EXISTS.*--force/);
    expect(fs.readFileSync(existing, 'utf8')).toBe('keep me');
    expect(sha(copy)).toBe(before);
    const bad = vbp('prune', copy, '--data', fixture('calib.npy'), '--ratio', '1.5', '--out', path.join(dir, 'never.pt'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('[PLAN]');
    expect(fs.existsSync(path.join(dir, 'never.pt'))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('gives clear errors and exit codes for missing files and bad arguments', () => {
    const missing = vbp('inspect', path.join(dir, 'missing.pt'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^vbp: error \[MODEL_NOT_FOUND\]: .*missing\.pt/);
    const notModel = vbp('inspect', fixture('calib.npy'));
    expect(notModel.status).toBe(1);
    expect(notModel.stderr).toContain('[MODEL_LOAD]');
    const noData = vbp('stats', model, '--out', path.join(dir, 's2'));
    expect(noData.status).toBe(2);
    expect(noData.stderr).toContain('--data');
    const missingData = vbp('stats', model, '--data', path.join(dir, 'nope.npy'), '--out', path.join(dir, 's3'));
    expect(missingData.status).toBe(1);
    expect(missingData.stderr).toContain('[DATA]');
    const both = vbp('prune', model, '--ratio', '0.5', '--out', path.join(dir, 'p.pt'));
    expect(both.status).toBe(2);
    const unknown = vbp('prune', model, '--bogus', '--out', path.join(dir, 'p.pt'));
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--bogus'");
    const badCriterion = vbp('prune', model, '--stats', path.join(dir, 'stats.safetensors'), '--ratio', '0.5', '--criterion', 'snip', '--out', path.join(dir, 'p.pt'));
    expect(badCriterion.status).toBe(2);
    const badDevice = vbp('inspect', model, '--device', 'tpu');
    expect(badDevice.status).toBe(1);
    expect(badDevice.stderr).toContain('[DEVICE]');
    const corruptStats = path.join(dir, 'corrupt.safetensors');
    fs.writeFileSync(corruptStats, Buffer.from([1, 2, 3]));
    const corrupt = vbp('prune', model, '--stats', corruptStats, '--ratio', '0.5', '--out', path.join(dir, 'p.pt'));
    expect(corrupt.status).toBe(1);
    expect(corrupt.stderr).toContain('[STATS]');
  });
});
