/**
 * The one planning entry: every criterion, the compensated selection included, after checking that the
 * statistics are the model's. The CLI, the demo and the benchmarks plan through it; plan() (ranking
 * criteria, statistics only) and planCompensated() (least squares, needs the model) are its two ways.
 */
import { VbpError } from '../errors';
import type { Model } from '../model/model';
import { checkStatsFit } from '../statistics/fit';
import type { Stats } from '../statistics/stats';
import { planCompensated } from './compensated-selection';
import type { Criterion } from './criteria';
import { plan, type Plan, type PlanOptions } from './plan';

export interface PlanningOptions extends Omit<PlanOptions, 'criterion'> {
  /** A ranking criterion (plan()), or 'compensated' (planCompensated(): a ratio only, global scope). */
  criterion?: Criterion | 'compensated';
  /** 'compensated': the ridge of the selection's costs (default DEFAULT_SELECTION_RIDGE). */
  ridge?: number;
}

/** A plan of `stats`, which must be statistics of `model` (STATS naming them otherwise). */
export async function planPruning(model: Model, stats: Stats, options: PlanningOptions = {}): Promise<Plan> {
  await checkStatsFit(model, stats);
  const { criterion, ridge, ...rest } = options;
  if (criterion !== 'compensated') {
    if (ridge !== undefined) throw new VbpError('PLAN', "ridge is an option of criterion 'compensated'");
    return plan(stats, { ...rest, ...(criterion !== undefined ? { criterion } : {}) });
  }
  const { ratio, ...others } = rest;
  const given = Object.entries(others).filter(
    ([key, value]) => value !== undefined && !(key === 'scope' && value === 'global'),
  );
  if (given.length > 0) {
    throw new VbpError(
      'PLAN',
      `criterion 'compensated' takes a ratio (and a ridge) only, not ${given.map(([key]) => key).join(', ')}`,
    );
  }
  return planCompensated(model, stats, { ratio: ratio as number, ...(ridge !== undefined ? { ridge } : {}) });
}
