/**
 * Plans (lib/pruning/plan.ts, plan-file.ts): the same neurons as the PyTorch reference, criteria and scopes, the plan
 * file, coded errors; the targets and width rounding are in selection.test.ts.
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
  type Plan,
  type Stats,
  type PlanOptions,
} from '../../lib';
import { calibrationBatches, fixture, json, tempDir } from '../helpers';

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
    expect(() => plan(stats, { ratio: 0.2, criterion: 'hessian' as never })).toThrow(
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
