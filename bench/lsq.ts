/**
 * Least-squares compensation on the bundled model, measured on data the choices were not made on
 * (`node dist/bench/lsq.js`, about 4 minutes on 2 cores; writes bench/lsq-results.json):
 *
 * - the default ridge: calibrate on 2,048 of the first 50,000 training images, sweep the ridge, and
 *   score top-1 on the last 10,000 training images (held out; the test split is not looked at);
 * - sequential mode: each block's statistics re-gathered on the model whose earlier blocks are already
 *   pruned and compensated, against one-shot least squares;
 * - selection: variance ranking against planCompensated(), which knows about the compensation (greedy, by
 *   the output error the kept neurons cannot predict: ||W2'[:, j]||^2 / (C_KK^-1)_jj, updated as neurons go).
 *
 * Test-split numbers are printed for the final choices only.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  planCompensated,
  batches,
  evaluate,
  gatherStats,
  IdxDataset,
  DEBIAN_FASHION_MNIST,
  keepLargeAllocations,
  loadModel,
  plan,
  prune,
  setNumThreads,
  type Dataset,
  type Model,
  type Plan,
  type Stats,
} from '../lib';
import { packageRoot } from '../lib/util/package-root';
import { BUNDLED_MODEL } from '../lib/demo/run';

const RIDGES = [0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];
const RATIOS = [0.5, 0.7, 0.9];
const SELECTION_RIDGES = [1e-5, 1e-4, 1e-3, 1e-2];

/** Items [start, end) of a data set. */
function slice(data: Dataset, start: number, end: number): Dataset {
  return {
    size: end - start,
    itemShape: data.itemShape,
    description: `${data.description} [${start}, ${end})`,
    labelled: true,
    read: (i, target) => data.read(start + i, target),
  };
}

async function top1(model: Model, data: Dataset): Promise<number> {
  return (await evaluate(model, data, { batchSize: 500 })).top1;
}

/** Each block's statistics gathered on the model whose earlier blocks are already pruned and compensated. */
async function sequential(
  model: Model,
  p: Plan,
  calibration: () => ReturnType<typeof batches>,
  ridge: number,
): Promise<Model> {
  let current = model;
  for (const [i, layer] of p.layers.entries()) {
    const stats = await gatherStats(current, calibration(), {
      mlps: [{ fc1: layer.fc1, fc2: layer.fc2 }],
      covariance: true,
    });
    const sub: Plan = { ...p, layers: [layer], model: { layers: [p.model.layers[i]] } };
    const { model: next } = await prune(current, sub, { compensation: 'lsq', ridge, stats, skipMacs: true });
    if (current !== model) await current.dispose();
    current = next;
  }
  return current;
}

async function main(): Promise<void> {
  setNumThreads(1);
  keepLargeAllocations();
  const model = await loadModel(BUNDLED_MODEL);
  const normalise = { mean: model.card!.mean!, std: model.card!.std! };
  const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', { normalise });
  const test = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test', { normalise });
  const fit = slice(train, 0, 50000);
  const heldOut = slice(train, 50000, 60000);
  const calibration = () => batches(fit, { batchSize: 128, shuffle: true, seed: 0, limit: 2048 });
  const stats: Stats = await gatherStats(model, calibration(), { covariance: true });
  const results: Record<string, unknown> = { heldOutOriginal: await top1(model, heldOut) };

  const sweep: Record<string, Record<string, number>> = {};
  for (const ratio of RATIOS) {
    const p = plan(stats, { ratio });
    sweep[ratio] = {};
    const { model: mean } = await prune(model, p, { compensation: 'mean', skipMacs: true });
    sweep[ratio].mean = await top1(mean, heldOut);
    await mean.dispose();
    for (const ridge of RIDGES) {
      const { model: pruned } = await prune(model, p, { compensation: 'lsq', ridge, stats, skipMacs: true }).catch(
        () => ({ model: undefined }),
      );
      sweep[ratio][`lsq ${ridge}`] = pruned ? await top1(pruned, heldOut) : Number.NaN;
      await pruned?.dispose();
    }
    process.stderr.write(`ridge sweep at ${ratio}: ${JSON.stringify(sweep[ratio])}\n`);
  }
  // The largest ridge whose held-out top-1, averaged over the ratios, is within 0.05 points of the best:
  // as much regularisation (robustness to constant or collinear kept neurons) as costs no accuracy.
  const averages = RIDGES.map(
    (ridge) => RATIOS.reduce((s, ratio) => s + sweep[ratio][`lsq ${ridge}`], 0) / RATIOS.length,
  );
  const top = Math.max(...averages.filter(Number.isFinite));
  const best = Math.max(...RIDGES.filter((_, i) => averages[i] >= top - 0.0005));
  results.ridgeSweep = {
    heldOutTop1: sweep,
    averageByRidge: Object.fromEntries(RIDGES.map((r, i) => [r, averages[i]])),
    best,
  };

  // The selection's own ridge (it regularises the precision matrix the greedy costs come from), by the same rule.
  const selectionSweep: Record<string, Record<string, number>> = {};
  for (const ratio of RATIOS) {
    selectionSweep[ratio] = {};
    for (const ridge of SELECTION_RIDGES) {
      const { model: pruned } = await prune(model, await planCompensated(model, stats, { ratio, ridge }), {
        compensation: 'lsq',
        ridge: best,
        stats,
        skipMacs: true,
      });
      selectionSweep[ratio][ridge] = await top1(pruned, heldOut);
      await pruned.dispose();
    }
    process.stderr.write(`selection ridge sweep at ${ratio}: ${JSON.stringify(selectionSweep[ratio])}\n`);
  }
  const selectionAverages = SELECTION_RIDGES.map(
    (ridge) => RATIOS.reduce((s, ratio) => s + selectionSweep[ratio][ridge], 0) / RATIOS.length,
  );
  const selectionTop = Math.max(...selectionAverages);
  const selectionBest = Math.max(...SELECTION_RIDGES.filter((_, i) => selectionAverages[i] >= selectionTop - 0.0005));
  results.selectionRidgeSweep = {
    heldOutTop1: selectionSweep,
    averageByRidge: Object.fromEntries(SELECTION_RIDGES.map((r, i) => [r, selectionAverages[i]])),
    best: selectionBest,
  };

  const modes: Record<string, Record<string, { heldOut: number; test: number }>> = {};
  for (const ratio of RATIOS) {
    const p = plan(stats, { ratio });
    const row: Record<string, { heldOut: number; test: number }> = {};
    const measure = async (name: string, pruned: Model): Promise<void> => {
      row[name] = { heldOut: await top1(pruned, heldOut), test: await top1(pruned, test) };
      await pruned.dispose();
    };
    await measure('mean', (await prune(model, p, { compensation: 'mean', skipMacs: true })).model);
    await measure(
      'lsq one-shot',
      (await prune(model, p, { compensation: 'lsq', ridge: best, stats, skipMacs: true })).model,
    );
    await measure('lsq sequential', await sequential(model, p, calibration, best));
    const compensated = await planCompensated(model, stats, { ratio, ridge: selectionBest });
    await measure(
      'compensated selection + lsq',
      (await prune(model, compensated, { compensation: 'lsq', ridge: best, stats, skipMacs: true })).model,
    );
    for (const criterion of ['wifv', 'magnitude'] as const) {
      await measure(
        `${criterion} + lsq`,
        (
          await prune(model, plan(stats, { ratio, criterion }), {
            compensation: 'lsq',
            ridge: best,
            stats,
            skipMacs: true,
          })
        ).model,
      );
    }
    modes[ratio] = row;
    process.stderr.write(`modes at ${ratio}: ${JSON.stringify(row)}\n`);
  }
  results.modes = modes;
  results.testOriginal = await top1(model, test);
  fs.writeFileSync(path.join(packageRoot, 'bench', 'lsq-results.json'), JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  await model.dispose();
}

void main();
