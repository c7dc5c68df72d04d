/**
 * The selection made for least-squares compensation (its ridge is in prune.ts).
 *
 * With least-squares compensation the cost of removing neuron j is no longer its variance but the part of
 * its output the kept neurons cannot predict: ||W2'[:, j]||^2 / (C_KK + lambda I)^-1_jj. planCompensated()
 * removes neurons greedily by that cost, globally, updating it exactly as neurons go (native core,
 * compensated_selection.cc).
 */
import { VbpError } from '../errors';
import { checkOptionKeys } from '../util/options';
import type { Model } from '../model/model';
import { assemblePlan, checkStats, type Plan } from './plan';
import { checkStatsFit } from '../statistics/fit';
import type { Stats } from '../statistics/stats';

/**
 * The ridge of planCompensated()'s costs (it regularises the precision matrix they come from), chosen by the
 * same rule as DEFAULT_RIDGE on the same held-out images.
 */
export const DEFAULT_SELECTION_RIDGE = 1e-4;

export interface CompensatedPlanOptions {
  /** Fraction of all MLP hidden neurons to remove, in [0, 1). */
  ratio: number;
  /** Relative to the mean variance of the block's neurons (default DEFAULT_SELECTION_RIDGE). */
  ridge?: number;
}

/**
 * A plan for least-squares compensation: the neurons whose part of fc2's output the kept ones predict best
 * go first. Needs statistics gathered with { covariance: true } and the model they came from (for fc2's
 * weights); global scope and a ratio only. Apply it with prune(model, plan, { compensation: 'lsq', stats }).
 */
export async function planCompensated(model: Model, stats: Stats, options: CompensatedPlanOptions): Promise<Plan> {
  checkOptionKeys(options, ['ratio', 'ridge'], 'planCompensated()', 'PLAN');
  const { ratio } = options;
  const ridge = options.ridge ?? DEFAULT_SELECTION_RIDGE;
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio < 1))
    throw new VbpError('PLAN', `ratio must be a number in [0, 1), got ${String(ratio)}`);
  if (!(typeof ridge === 'number' && ridge > 0 && Number.isFinite(ridge)))
    throw new VbpError('PLAN', `ridge must be a positive number, got ${String(ridge)}`);
  const target = { kind: 'ratio' as const, value: ratio };
  checkStats(stats, target);
  stats.requireCovariance('planCompensated()');
  const count = Math.floor(ratio * stats.totalNeurons);
  const most = stats.totalNeurons - stats.layers.length;
  if (count > most)
    throw new VbpError(
      'PLAN',
      `cannot remove ${(ratio * 100).toFixed(1)} % of the MLP neurons: at most ${((most / stats.totalNeurons) * 100).toFixed(1)} % is possible (every block keeps at least one neuron)`,
    );
  await checkStatsFit(model, stats);
  // The co-moment as it is: costs scale alike and the ridge is relative, so the order is that of the covariance.
  const blocks = stats.layers.map((l) => ({ fc2: l.fc2, covariance: l.comoment! }));
  const removed = await model.enqueue((h) => h.compensatedSelection(blocks, count, ridge));
  return assemblePlan(
    stats,
    { criterion: 'compensated', scope: 'global', target, roundTo: 1 },
    removed.map((r) => Array.from(r)),
  );
}
