/**
 * vbp stats --covariance, then vbp prune --compensation lsq (from statistics, from a saved plan, calibrating
 * on the spot with --criterion compensated): the library's model; what is refused and how it is said. The
 * library's least squares is in test/pruning/least-squares.test.ts.
 */
import path from 'node:path';
import { gatherStats, loadModel, plan, prune } from '../../lib';
import { asTensor, calibrationBatches, fixture, json, maxAbsDiff, npy, tempDir, vbp } from '../helpers';

const dir = tempDir('torch-vbp-lsq-');

describe('vbp and least squares', () => {
  it("stats --covariance, then prune --compensation lsq: the library's model; statistics without covariance are refused with a hint", async () => {
    const statsFile = path.join(dir, 'cov.safetensors');
    const gathered = vbp([
      'stats',
      fixture('deit_scripted.pt'),
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--covariance',
      '--batch-size',
      '16',
      '--no-shuffle',
      '--out',
      statsFile,
      '--json',
    ]);
    expect(gathered.status).toBe(0);
    expect(JSON.parse(gathered.stdout).covarianceBytes).toBe(3 * 192 * 192 * 8);
    const out = path.join(dir, 'cli-lsq.pt');
    const planFile = path.join(dir, 'cli-lsq-plan.json');
    const pruned = vbp([
      'prune',
      fixture('deit_scripted.pt'),
      '--stats',
      statsFile,
      '--ratio',
      '0.5',
      '--compensation',
      'lsq',
      '--ridge',
      '0.001',
      '--out',
      out,
      '--plan-out',
      planFile,
    ]);
    expect(pruned.status).toBe(0);
    expect(pruned.stdout).toContain('compensation lsq ridge 0.001');
    const model = await loadModel(fixture('deit_scripted.pt'));
    const stats = await gatherStats(model, calibrationBatches(), { covariance: true });
    const { model: expected } = await prune(model, plan(stats, { ratio: 0.5 }), {
      compensation: 'lsq',
      ridge: 1e-3,
      stats,
    });
    const fromCli = await loadModel(out);
    const input = npy('input_b4.npy');
    expect(
      maxAbsDiff(
        asTensor(await fromCli.forward(input)).data as Float32Array,
        asTensor(await expected.forward(input)).data as Float32Array,
      ),
    ).toBe(0);
    // A saved plan with the statistics for the covariance: the same model again.
    const again = path.join(dir, 'cli-lsq-again.pt');
    expect(
      vbp([
        'prune',
        fixture('deit_scripted.pt'),
        '--plan',
        planFile,
        '--stats',
        statsFile,
        '--compensation',
        'lsq',
        '--ridge',
        '0.001',
        '--out',
        again,
      ]).status,
    ).toBe(0);
    const fromPlan = await loadModel(again);
    expect(
      maxAbsDiff(
        asTensor(await fromPlan.forward(input)).data as Float32Array,
        asTensor(await expected.forward(input)).data as Float32Array,
      ),
    ).toBe(0);
    const plainFile = path.join(dir, 'plain.safetensors');
    expect(
      vbp(['stats', fixture('deit_scripted.pt'), '--data', fixture('calib.npy'), '--raw', '--out', plainFile]).status,
    ).toBe(0);
    const refused = vbp([
      'prune',
      fixture('deit_scripted.pt'),
      '--stats',
      plainFile,
      '--ratio',
      '0.5',
      '--compensation',
      'lsq',
      '--out',
      path.join(dir, 'never.pt'),
    ]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/\[STATS\].*hold no covariance.*vbp stats --covariance/);
    const noStats = vbp([
      'prune',
      fixture('deit_scripted.pt'),
      '--plan',
      planFile,
      '--compensation',
      'lsq',
      '--out',
      path.join(dir, 'never.pt'),
    ]);
    expect(noStats.status).toBe(2);
    expect(noStats.stderr).toContain('--compensation: lsq with --plan needs --stats');
    // Calibrating on the spot, with the selection made for least squares.
    const selected = path.join(dir, 'cli-compensated.pt');
    const compensated = vbp([
      'prune',
      fixture('deit_scripted.pt'),
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--batch-size',
      '16',
      '--no-shuffle',
      '--ratio',
      '0.3',
      '--criterion',
      'compensated',
      '--compensation',
      'lsq',
      '--out',
      selected,
      '--json',
    ]);
    expect(compensated.status).toBe(0);
    const report = JSON.parse(compensated.stdout);
    const ref = json<{ pruned: Record<string, number[]> }>('ref', 'deit.r0.3.compensated.plan.json');
    expect(report.totals.pruned).toBe(Object.values(ref.pruned).reduce((n, l) => n + l.length, 0));
    const wrong = vbp([
      'prune',
      fixture('deit_scripted.pt'),
      '--stats',
      statsFile,
      '--ratio',
      '0.3',
      '--criterion',
      'compensated',
      '--out',
      path.join(dir, 'never.pt'),
    ]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('add --compensation lsq');
    await Promise.all([model, expected, fromCli, fromPlan].map((m) => m.dispose()));
  });
});
