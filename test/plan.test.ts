/**
 * Plans: the same neurons as the PyTorch reference, targets met (also with rounded widths) or refused, coded errors.
 */
import path from 'node:path';
import fs from 'node:fs';
import {
  gatherStats,
  loadModel,
  plan,
  loadPlan,
  savePlan,
  validatePlan,
  prune,
  describeTarget,
  type Plan,
  type Stats,
  type PlanOptions,
} from '../lib';
import { calibrationBatches, fixture, json, tempDir } from './helpers';

interface RefPlan {
  ratio: number;
  criterion: string;
  pruned: Record<string, number[]>;
}

let stats: Stats;
let vitStats: Stats;

beforeAll(async () => {
  const deit = await loadModel(fixture('deit_scripted.pt'));
  stats = await gatherStats(deit, calibrationBatches());
  deit.dispose();
  const vit = await loadModel(fixture('vit_torchvision.pt'));
  vitStats = await gatherStats(vit, calibrationBatches());
  vit.dispose();
});

function expectSameSelection(p: Plan, ref: RefPlan): void {
  for (const layer of p.layers) expect(layer.pruned).toEqual(ref.pruned[layer.fc1]);
}

describe('plan', () => {
  it.each([
    ['deit', 0.3, {}],
    ['deit', 0.5, {}],
    ['vit_torchvision', 0.3, {}],
    ['vit_torchvision', 0.5, {}],
    ['deit', 0.5, { criterion: 'magnitude' }],
    ['deit', 0.5, { criterion: 'wifv' }],
    ['deit', 0.5, { scope: 'per-layer' }],
  ] as Array<[string, number, PlanOptions]>)(
    '%s at ratio %s %j selects exactly the reference neurons',
    (model, ratio, options) => {
      const suffix = options.criterion ? `.${options.criterion}` : options.scope ? '.perlayer' : '';
      const ref = json<RefPlan>('ref', `${model}.r${ratio}${suffix}.plan.json`);
      const p = plan(model === 'deit' ? stats : vitStats, { ratio, ...options });
      expectSameSelection(p, ref);
      expect(p.totals.pruned).toBe(Object.values(ref.pruned).reduce((s, l) => s + l.length, 0));
    },
  );

  it('global scope prunes layers unevenly, per-layer scope evenly; every layer keeps a neuron', () => {
    const global = plan(stats, { ratio: 0.5 });
    const perLayer = plan(stats, { ratio: 0.5, scope: 'per-layer' });
    expect(new Set(global.layers.map((l) => l.pruned.length)).size).toBeGreaterThan(1);
    expect(perLayer.layers.map((l) => l.pruned.length)).toEqual([96, 96, 96]);
    const extreme = plan(stats, { ratio: 0.99 }); // 570 of 576: every block keeps at least one
    expect(extreme.layers.every((l) => l.keep.length >= 1)).toBe(true);
    expect(extreme.totals.pruned).toBe(570);
    // 575 of 576 would leave a block empty: refused, saying how far one can go, never silently less.
    expect(() => plan(stats, { ratio: 0.999 })).toThrow(
      expect.objectContaining({ code: 'PLAN', message: expect.stringContaining('at most 99.5 %') }),
    );
  });

  it('ratio 0 removes nothing; the plan records the means of what it removes', () => {
    expect(plan(stats, { ratio: 0 }).totals.pruned).toBe(0);
    const p = plan(stats, { ratio: 0.3 });
    p.layers.forEach((l, i) => expect(l.prunedMeans).toEqual(l.pruned.map((j) => stats.layers[i].mean[j])));
  });

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

  it('random is reproducible with a seed and differs across seeds', () => {
    const a = plan(stats, { ratio: 0.5, criterion: 'random', seed: 7 });
    const b = plan(stats, { ratio: 0.5, criterion: 'random', seed: 7 });
    const c = plan(stats, { ratio: 0.5, criterion: 'random', seed: 8 });
    expect(a.layers).toEqual(b.layers);
    expect(a.layers).not.toEqual(c.layers);
  });

  it.each([-0.1, 1, 1.5, Number.NaN])('ratio %s is rejected with PLAN', (ratio) => {
    expect(() => plan(stats, { ratio })).toThrow(expect.objectContaining({ code: 'PLAN' }));
  });

  it('rejects unknown options and ambiguous targets with PLAN', () => {
    expect(() => plan(stats, {})).toThrow(expect.objectContaining({ code: 'PLAN' }));
    expect(() => plan(stats, { ratio: 0.2, macsReduction: 0.1 })).toThrow(expect.objectContaining({ code: 'PLAN' }));
    expect(() => plan(stats, { ratio: 0.2, criterion: 'snip' as never })).toThrow(
      expect.objectContaining({ code: 'PLAN' }),
    );
    expect(() => plan(stats, { ratio: 0.2, roundTo: 0 })).toThrow(expect.objectContaining({ code: 'PLAN' }));
    expect(() => plan(stats, { ratio: 0.2, roundto: 8 } as never)).toThrow(
      expect.objectContaining({ code: 'PLAN', message: expect.stringContaining("unknown option 'roundto'") }),
    );
  });

  it('saves and loads plans as JSON, and rejects malformed ones', async () => {
    const dir = tempDir();
    const p = plan(stats, { ratio: 0.5 });
    const file = path.join(dir, 'plan.json');
    await savePlan(p, file);
    expect(await loadPlan(file)).toEqual(p);
    const broken = (mutate: (q: Plan) => void): Plan => {
      const q = JSON.parse(JSON.stringify(p)) as Plan;
      mutate(q);
      return q;
    };
    expect(() => validatePlan(broken((q) => (q.layers[0].keep = [...q.layers[0].keep, 999])))).toThrow(
      expect.objectContaining({ code: 'PLAN' }),
    );
    expect(() => validatePlan(broken((q) => (q.layers[0].keep = [])))).toThrow(
      expect.objectContaining({ code: 'PLAN' }),
    );
    expect(() => validatePlan(broken((q) => (q.layers[1].keep = [5, 3])))).toThrow(
      expect.objectContaining({ code: 'PLAN' }),
    );
    expect(() => validatePlan(broken((q) => (q.layers[0].prunedMeans = [])))).toThrow(
      expect.objectContaining({ code: 'PLAN' }),
    );
    expect(() => validatePlan({ format: 'other' })).toThrow(expect.objectContaining({ code: 'PLAN' }));
    fs.writeFileSync(path.join(dir, 'bad.json'), '{ not json');
    await expect(loadPlan(path.join(dir, 'bad.json'))).rejects.toMatchObject({ code: 'PLAN' });
    await expect(loadPlan(path.join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'IO' });
  });

  it('prune() refuses a plan made for another model, and out-of-range indices', async () => {
    const p = plan(stats, { ratio: 0.5 });
    const other = await loadModel(fixture('deit_constant.pt')); // same shapes, other weights
    await expect(prune(other, p)).rejects.toMatchObject({
      code: 'PLAN',
      message: expect.stringContaining('another model'),
    });
    const vit = await loadModel(fixture('vit_torchvision.pt'));
    await expect(prune(vit, p)).rejects.toMatchObject({ code: 'PLAN' });
    const deit = await loadModel(fixture('deit_traced.pt'));
    const outOfRange = JSON.parse(JSON.stringify(p)) as Plan;
    outOfRange.layers[0].keep[outOfRange.layers[0].keep.length - 1] = 192;
    await expect(prune(deit, outOfRange)).rejects.toMatchObject({ code: 'PLAN' });
    other.dispose();
    vit.dispose();
    deit.dispose();
  });
});
