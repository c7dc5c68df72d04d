/**
 * Plans: which hidden neurons of which MLP block go. A plan is a plain, JSON-serialisable value made from
 * statistics; it can be saved, inspected, edited and applied with prune() (its file: plan-file.ts). Scoring
 * is in criteria.ts, how many neurons each block loses in selection.ts.
 */
import { VbpError } from '../errors';
import { checkOptionKeys } from '../util/options';
import { reduction } from '../util/format';
import { macsPerNeuron } from '../model/accounting';
import { isCriterion, neuronScores, CRITERIA, type Criterion } from './criteria';
import type { ModelSignature } from '../model/mlp';
import { selectRemovals, targetText, type Scope, type Target } from './selection';
import type { Stats } from '../statistics/stats';

export type { Criterion } from './criteria';
export type { Scope } from './selection';

export interface PlanOptions {
  /** variance (default, the paper's VBP), magnitude, wifv or random. */
  criterion?: Criterion;
  /**
   * global (default) ranks all neurons of all blocks together (the paper's); per-layer removes the same fraction from
   * each block.
   */
  scope?: Scope;
  /** Fraction of all MLP hidden neurons to remove, in [0, 1). */
  ratio?: number;
  /** Instead of ratio: remove neurons until the whole model's MACs drop by at least this fraction. */
  macsReduction?: number;
  /** Instead of ratio: remove neurons until the whole model's parameters drop by at least this fraction. */
  paramsReduction?: number;
  /** Keep a multiple of this many neurons per block (e.g. 8 or 64 for tensor cores); the target is still met. */
  roundTo?: number;
  /** Seed of the random criterion. */
  seed?: number;
}

const PLAN_OPTIONS = ['criterion', 'scope', 'ratio', 'macsReduction', 'paramsReduction', 'roundTo', 'seed'];
const SCOPES: Scope[] = ['global', 'per-layer'];

export interface PlanLayer {
  fc1: string;
  fc2: string;
  hidden: number;
  inFeatures: number;
  outFeatures: number;
  tokensPerItem: number;
  paramsPerNeuron: number;
  /** Ascending indices of the neurons kept and removed. */
  keep: number[];
  pruned: number[];
  /** Calibration means of the removed neurons, in `pruned` order (for mean-shift compensation). */
  prunedMeans: number[];
}

export interface Plan {
  format: 'torch-vbp-plan';
  version: 1;
  /** A ranking criterion, or 'compensated' (planCompensated(): greedy by what least squares cannot recover). */
  criterion: Criterion | 'compensated';
  scope: Scope;
  target: Target;
  roundTo: number;
  seed?: number;
  /** The model the statistics came from; prune() refuses other models. */
  model: ModelSignature;
  inputShape: number[];
  modelMacs: number;
  modelParams: number;
  layers: PlanLayer[];
  totals: {
    neurons: number;
    pruned: number;
    /** pruned / neurons. */
    ratio: number;
    /** Per input item, and as fractions of the whole model's MACs and parameters. */
    macsRemoved: number;
    paramsRemoved: number;
    macsReduction: number;
    paramsReduction: number;
  };
}

function planError(message: string): never {
  throw new VbpError('PLAN', message);
}

function checkOptions(options: PlanOptions): Target {
  checkOptionKeys(options, PLAN_OPTIONS, 'plan()', 'PLAN');
  if (options.criterion !== undefined && !isCriterion(options.criterion)) {
    planError(`unknown criterion '${String(options.criterion)}' (expected ${Object.keys(CRITERIA).join(', ')})`);
  }
  if (options.scope !== undefined && !SCOPES.includes(options.scope)) {
    planError(`unknown scope '${String(options.scope)}' (expected ${SCOPES.join(', ')})`);
  }
  const targets = (
    [
      ['ratio', options.ratio],
      ['macs', options.macsReduction],
      ['params', options.paramsReduction],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (targets.length !== 1) planError('give exactly one of ratio, macsReduction or paramsReduction');
  const [kind, value] = targets[0];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    planError(`${kind === 'ratio' ? 'ratio' : kind + 'Reduction'} must be a number in [0, 1), got ${String(value)}`);
  }
  if (options.roundTo !== undefined && (!Number.isInteger(options.roundTo) || options.roundTo < 1)) {
    planError(`roundTo must be a positive integer, got ${String(options.roundTo)}`);
  }
  if (options.seed !== undefined && !Number.isInteger(options.seed))
    planError(`seed must be an integer, got ${String(options.seed)}`);
  return { kind, value };
}

/** @internal */
export function checkStats(stats: Stats, target: Target): void {
  const bad = stats.nonFiniteLayers();
  if (bad.length > 0) {
    throw new VbpError(
      'NON_FINITE',
      `the statistics hold NaN/Inf activations in ${bad.map((l) => `${l.fc1} (${l.nonFinite} values)`).join(', ')}; check the calibration data and the model`,
    );
  }
  if (stats.layers.some((l) => l.count === 0)) planError('the statistics are empty (no calibration samples)');
  if (target.kind === 'macs' && !(stats.info.modelMacs > 0))
    planError("a MAC target needs statistics that know the model's MACs (gathered with gatherStats())");
  if (target.kind === 'params' && !(stats.info.modelParams > 0))
    planError("a parameter target needs statistics that know the model's parameters (gathered with gatherStats())");
}

/** Neuron indices of a block from the lowest score up (ties by index). */
function ascending(scores: Float64Array): number[] {
  return Array.from({ length: scores.length }, (_, j) => j).sort((a, b) => scores[a] - scores[b] || a - b);
}

/**
 * Decides which neurons to remove. Every block keeps at least one neuron (or `roundTo`); the target is met or refused.
 */
export function plan(stats: Stats, options: PlanOptions = {}): Plan {
  const target = checkOptions(options);
  const criterion = options.criterion ?? 'variance';
  const scope = options.scope ?? 'global';
  const roundTo = options.roundTo ?? 1;
  checkStats(stats, target);
  const scores = neuronScores(stats, criterion, options.seed ?? 0);
  const removed = selectRemovals({
    blocks: stats.layers.map((l, i) => ({
      hidden: l.hidden,
      macsPerNeuron: macsPerNeuron(l, stats.tokensPerItem(i)),
      paramsPerNeuron: l.paramsPerNeuron,
    })),
    scores,
    target,
    scope,
    roundTo,
    modelMacs: stats.info.modelMacs,
    modelParams: stats.info.modelParams,
  });
  const prunedSets = scores.map((s, i) => ascending(s).slice(0, removed[i]));
  return assemblePlan(
    stats,
    { criterion, scope, target, roundTo, ...(criterion === 'random' ? { seed: options.seed ?? 0 } : {}) },
    prunedSets,
  );
}

/** @internal A plan from the neurons chosen per block (any order within a block). */
export function assemblePlan(
  stats: Stats,
  how: Pick<Plan, 'criterion' | 'scope' | 'target' | 'roundTo' | 'seed'>,
  prunedSets: number[][],
): Plan {
  const layers = stats.layers;
  const planLayers: PlanLayer[] = layers.map((l, i) => {
    const prunedSet = new Set(prunedSets[i]);
    const keep: number[] = [];
    const pruned: number[] = [];
    for (let j = 0; j < l.hidden; j++) (prunedSet.has(j) ? pruned : keep).push(j);
    return {
      fc1: l.fc1,
      fc2: l.fc2,
      hidden: l.hidden,
      inFeatures: l.inFeatures,
      outFeatures: l.outFeatures,
      tokensPerItem: stats.tokensPerItem(i),
      paramsPerNeuron: l.paramsPerNeuron,
      keep,
      pruned,
      prunedMeans: pruned.map((j) => l.mean[j]),
    };
  });
  const macsEach = layers.map((l, i) => macsPerNeuron(l, stats.tokensPerItem(i)));
  const prunedTotal = planLayers.reduce((s, l) => s + l.pruned.length, 0);
  const totalNeurons = stats.totalNeurons;
  const macsRemoved = planLayers.reduce((s, l, i) => s + l.pruned.length * macsEach[i], 0);
  const paramsRemoved = planLayers.reduce((s, l, i) => s + l.pruned.length * layers[i].paramsPerNeuron, 0);
  return {
    format: 'torch-vbp-plan',
    version: 1,
    ...how,
    model: stats.signature,
    inputShape: [...stats.info.inputShape],
    modelMacs: stats.info.modelMacs,
    modelParams: stats.info.modelParams,
    layers: planLayers,
    totals: {
      neurons: totalNeurons,
      pruned: prunedTotal,
      ratio: prunedTotal / totalNeurons,
      macsRemoved,
      paramsRemoved,
      macsReduction: stats.info.modelMacs > 0 ? macsRemoved / stats.info.modelMacs : 0,
      paramsReduction: stats.info.modelParams > 0 ? paramsRemoved / stats.info.modelParams : 0,
    },
  };
}

/**
 * "asked 20.0 % of the MLP neurons, removed 20.8 % (... neurons; MACs -12.1 %, parameters -13.0 %)": what a plan
 * achieved against its target.
 */
export function describeTarget(p: Plan): string {
  const got = { ratio: p.totals.ratio, macs: p.totals.macsReduction, params: p.totals.paramsReduction }[p.target.kind];
  return `asked ${targetText(p.target)}, removed ${(got * 100).toFixed(1)} % (${p.totals.pruned} of ${p.totals.neurons} neurons; MACs ${reduction(p.totals.macsReduction)}, parameters ${reduction(p.totals.paramsReduction)})`;
}
