/**
 * Selection (lib/pruning/selection.ts): how many neurons each block loses for a target, a scope and a width
 * rounding, through plan(): targets met at least (with rounded widths too) or refused with the most that is
 * possible.
 */
import { gatherStats, loadModel, plan, describeTarget, type Stats, type PlanOptions } from '../../lib';
import { calibrationBatches, fixture } from '../helpers';

let stats: Stats;

beforeAll(async () => {
  const deit = await loadModel(fixture('deit_scripted.pt'));
  stats = await gatherStats(deit, calibrationBatches());
  deit.dispose();
});

describe('selection', () => {
  it('roundTo makes every kept width a multiple', () => {
    const p = plan(stats, { ratio: 0.37, roundTo: 16 });
    for (const l of p.layers) expect(l.keep.length % 16).toBe(0);
  });

  it.each([
    [{ ratio: 0.2, roundTo: 64 }, 'ratio'],
    [{ ratio: 0.37, roundTo: 16 }, 'ratio'],
    [{ macsReduction: 0.2, roundTo: 8 }, 'macsReduction'],
    [{ paramsReduction: 0.15, roundTo: 32 }, 'paramsReduction'],
    [{ ratio: 0.2, roundTo: 64, scope: 'per-layer' }, 'ratio'],
    [{ macsReduction: 0.1, roundTo: 16, scope: 'per-layer' }, 'macsReduction'],
  ] as Array<[PlanOptions, 'ratio' | 'macsReduction' | 'paramsReduction']>)(
    'roundTo meets at least the target: %j',
    (options, key) => {
      const p = plan(stats, options);
      const got = {
        ratio: p.totals.ratio,
        macsReduction: p.totals.macsReduction,
        paramsReduction: p.totals.paramsReduction,
      }[key];
      expect(got).toBeGreaterThanOrEqual(options[key]! - (key === 'ratio' ? 1 / p.totals.neurons : 0));
      for (const l of p.layers) expect(l.keep.length === l.hidden || l.keep.length % options.roundTo! === 0).toBe(true);
      // And not by much more: one rounding step of one block at most.
      if (key === 'ratio' && options.scope !== 'per-layer')
        expect(p.totals.pruned - Math.floor(options.ratio! * p.totals.neurons)).toBeLessThan(options.roundTo!);
      expect(describeTarget(p)).toMatch(/^asked .* removed /);
    },
  );

  it('refuses a rounded target no rounding can meet, naming the most that is possible', () => {
    expect(() => plan(stats, { ratio: 0.8, roundTo: 64 })).toThrow(
      expect.objectContaining({ code: 'PLAN', message: expect.stringMatching(/multiples of 64: at most 66.7 %/) }),
    );
  });

  it('targets a MAC or parameter reduction of the whole model', () => {
    const byMacs = plan(stats, { macsReduction: 0.2 });
    expect(byMacs.totals.macsRemoved / stats.info.modelMacs).toBeGreaterThanOrEqual(0.2);
    expect(byMacs.totals.macsRemoved / stats.info.modelMacs).toBeLessThan(0.2 + (2 * (17 * 96)) / stats.info.modelMacs);
    const byParams = plan(stats, { paramsReduction: 0.1, scope: 'per-layer' });
    expect(byParams.totals.paramsRemoved / stats.info.modelParams).toBeGreaterThanOrEqual(0.1);
    expect(() => plan(stats, { macsReduction: 0.9 })).toThrow(
      expect.objectContaining({ code: 'PLAN', message: expect.stringContaining('at most') }),
    );
  });
});
