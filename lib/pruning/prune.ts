/**
 * Applies a plan: a new, genuinely smaller model (fc1 rows and fc2 columns removed). What takes the place of
 * the removed neurons is folded into fc2: their calibration means (VBP's mean shift, the default), the best
 * linear prediction of them from the kept neurons (least squares, from the calibration covariance), or
 * nothing. The input model is not changed; the new one carries the input's model card, noting the pruning.
 */
import { VbpError } from '../errors';
import type { ModelCard } from '../formats/model-card';
import { checkOptionKeys } from '../util/options';
import { blockMacs, blockParams, totalParams } from '../model/accounting';
import { checkSignature } from '../model/mlp';
import { Model, macsOf, parametersOf, signatureOf, type ModelLease } from '../model/model';
import type { Plan } from './plan';
import { validatePlan } from './plan-file';
import { Stats } from '../statistics/stats';
import type { NativeCut } from '../native/addon';

export type Compensation = 'mean' | 'lsq' | 'none';
const COMPENSATIONS: Compensation[] = ['mean', 'lsq', 'none'];

/**
 * The ridge of least-squares compensation, relative to the mean variance of the kept neurons: the largest
 * ridge whose top-1 on held-out training images of the bundled model stays within 0.05 points of the best
 * (bench/lsq.ts; README, "Least-squares compensation").
 */
export const DEFAULT_RIDGE = 1e-2;

export interface PruneOptions {
  /**
   * 'mean' (default, VBP): fc2.bias += W2[:, P] mean[P]. 'lsq': A = C[P, K] (C[K, K] + lambda I)^-1 predicts
   * the removed neurons from the kept ones; W2[:, K] += W2[:, P] A and fc2.bias += W2[:, P] (mean[P] - A mean[K]).
   * 'none': slice only.
   */
  compensation?: Compensation;
  /** 'lsq': lambda relative to the mean variance of the kept neurons (default DEFAULT_RIDGE). */
  ridge?: number;
  /** 'lsq': the statistics the plan was made from, gathered with { covariance: true }. */
  stats?: Stats;
  /** No MAC figures in the report. */
  skipMacs?: boolean;
  /**
   * Count the MACs before and after with a forward of each model instead of taking them from the plan
   * (the plan's count of the model, less fc1 + fc2 of every removed neuron for every token).
   */
  measureMacs?: boolean;
}

export interface LayerReport {
  fc1: string;
  fc2: string;
  hiddenBefore: number;
  hiddenAfter: number;
  /** This block's fc1 + fc2 MACs per input item, and all parameters of its two layers (weights and biases). */
  macsBefore: number;
  macsAfter: number;
  paramsBefore: number;
  paramsAfter: number;
}

export interface PruneReport {
  compensation: Compensation;
  neurons: { before: number; after: number };
  parameters: { before: number; after: number; reduction: number };
  /**
   * Whole-model MACs for one input of the calibration shape: from the plan (the model's MACs counted during
   * calibration, less the removed neurons' fc1 and fc2 MACs), or counted by forwards with measureMacs.
   */
  macs: {
    before: number;
    after: number;
    reduction: number;
    inputShape: number[];
    source: 'plan' | 'measured' | 'skipped';
  };
  layers: LayerReport[];
}

export interface PruneResult {
  model: Model;
  report: PruneReport;
}

export async function prune(model: Model, plan: Plan, options: PruneOptions = {}): Promise<PruneResult> {
  checkOptionKeys(options, ['compensation', 'ridge', 'stats', 'skipMacs', 'measureMacs'], 'prune()');
  if (options.skipMacs && options.measureMacs)
    throw new VbpError('INVALID_ARGUMENT', 'prune(): skipMacs and measureMacs exclude each other');
  const compensation = options.compensation ?? 'mean';
  if (!COMPENSATIONS.includes(compensation)) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      `compensation must be one of ${COMPENSATIONS.join(', ')}, got '${String(compensation)}'`,
    );
  }
  validatePlan(plan);
  const ridge = options.ridge ?? DEFAULT_RIDGE;
  if (compensation === 'lsq') checkLeastSquaresInputs(plan, options.stats, ridge);
  else if (options.ridge !== undefined || options.stats !== undefined)
    throw new VbpError('INVALID_ARGUMENT', "ridge and stats are options of compensation 'lsq'");
  const macs: MacSource = options.skipMacs
    ? 'skipped'
    : options.measureMacs || !(plan.modelMacs > 0)
      ? 'measured'
      : 'plan';
  return model.withLease((lease) => pruneWith(lease, model, plan, { compensation, ridge, stats: options.stats }, macs));
}

function checkLeastSquaresInputs(plan: Plan, stats: Stats | undefined, ridge: number): asserts stats is Stats {
  if (!(typeof ridge === 'number' && Number.isFinite(ridge) && ridge >= 0))
    throw new VbpError('INVALID_ARGUMENT', `ridge must be a number >= 0, got ${String(ridge)}`);
  if (!(stats instanceof Stats)) {
    throw new VbpError(
      'STATS',
      "compensation 'lsq' needs the statistics the plan was made from, gathered with { covariance: true }: pass them as `stats`",
    );
  }
  checkSignature(plan.model, stats.signature, stats.described, 'STATS', true);
  stats.requireCovariance("compensation 'lsq'");
  const bad = stats.nonFiniteLayers();
  if (bad.length > 0)
    throw new VbpError('NON_FINITE', `the statistics hold NaN/Inf activations in ${bad.map((l) => l.fc1).join(', ')}`);
}

interface CompensationChoice {
  compensation: Compensation;
  ridge: number;
  stats?: Stats;
}

/** What the native core needs per block: the cut, and for least squares every neuron's mean and the covariance. */
function cutsFor(plan: Plan, choice: CompensationChoice): NativeCut[] {
  return plan.layers.map((l) => {
    const cut: NativeCut = {
      fc1: l.fc1,
      fc2: l.fc2,
      keep: Int32Array.from(l.keep),
      prunedMeans: Float64Array.from(l.prunedMeans),
    };
    if (choice.compensation === 'lsq') {
      const layer = choice.stats!.layers.find((s) => s.fc1 === l.fc1 && s.fc2 === l.fc2)!;
      cut.means = layer.mean;
      // The co-moment as it is: the ridge is relative, so any positive multiple of the covariance gives the same fold.
      cut.covariance = layer.comoment;
    }
    return cut;
  });
}

/** Card entries that are measurements of the input model: no longer true of the pruned one. */
const MEASURED_KEY = /^(test|val|validation|eval)_|^(top1|top5|accuracy)$/;

/**
 * The input's card for the pruned model: what it expects is unchanged; its parameter count and MLP widths
 * are updated, and the input's measurements (test top-1, ...) move into the pruning note as "of the
 * original", since they are not the pruned model's.
 */
function prunedCard(
  card: ModelCard | undefined,
  plan: Plan,
  choice: CompensationChoice,
  parameters: number,
): ModelCard | undefined {
  if (!card) return undefined;
  const history = Array.isArray(card.pruning) ? card.pruning : card.pruning ? [card.pruning] : [];
  const { compensation, ridge } = choice;
  const kept: ModelCard = {};
  const original: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(card)) {
    if (MEASURED_KEY.test(key) || key === 'parameters') original[key] = value;
    else kept[key] = value;
  }
  if (typeof card.parameters === 'number') kept.parameters = parameters;
  const architecture = card.architecture;
  if (
    architecture &&
    typeof architecture === 'object' &&
    !Array.isArray(architecture) &&
    'mlp_hidden' in architecture
  ) {
    const widths = plan.layers.map((l) => l.keep.length);
    original.mlp_hidden = (architecture as Record<string, unknown>).mlp_hidden;
    kept.architecture = { ...architecture, mlp_hidden: widths.every((w) => w === widths[0]) ? widths[0] : widths };
  }
  return {
    ...kept,
    pruning: [
      ...history,
      {
        tool: 'torch-vbp',
        criterion: plan.criterion,
        scope: plan.scope,
        target: plan.target,
        roundTo: plan.roundTo,
        compensation,
        ...(compensation === 'lsq' ? { ridge } : {}),
        neurons: { before: plan.totals.neurons, after: plan.totals.neurons - plan.totals.pruned },
        original,
      },
    ],
  };
}

type MacSource = PruneReport['macs']['source'];

async function pruneWith(
  lease: ModelLease,
  model: Model,
  plan: Plan,
  choice: CompensationChoice,
  macs: MacSource,
): Promise<PruneResult> {
  const { compensation } = choice;
  const specs = plan.layers.map(({ fc1, fc2 }) => ({ fc1, fc2 }));
  const signature = await signatureOf(lease, specs).catch((error: VbpError) => {
    if (error.code !== 'MLP_SPEC' && error.code !== 'NO_MLP') throw error;
    throw new VbpError('PLAN', `the plan belongs to another model: ${error.message}`, { cause: error });
  });
  checkSignature(plan.model, signature, 'the plan', 'PLAN');

  const cuts = cutsFor(plan, choice);
  const handle = await lease.enqueue((h) => h.prune(cuts, compensation, choice.ridge));
  const pruned = new Model(handle, model.source);
  try {
    pruned.setCard(prunedCard(model.card, plan, choice, pruned.parameterCount()));
    return { model: pruned, report: await reportOf(lease, pruned, plan, compensation, macs) };
  } catch (error) {
    await pruned.dispose();
    throw error;
  }
}

/** Whole-model MACs before and after, by `source`: no forward unless measured. */
async function macsBeforeAfter(
  lease: ModelLease,
  pruned: Model,
  plan: Plan,
  source: MacSource,
): Promise<[number, number]> {
  if (source === 'skipped') return [0, 0];
  if (source === 'plan') return [plan.modelMacs, plan.modelMacs - plan.totals.macsRemoved];
  const inputShape = [1, ...plan.inputShape];
  return [(await macsOf(lease, inputShape)).total, (await pruned.macs(inputShape)).total];
}

async function reportOf(
  lease: ModelLease,
  pruned: Model,
  plan: Plan,
  compensation: Compensation,
  source: MacSource,
): Promise<PruneReport> {
  const inputShape = [1, ...plan.inputShape];
  const [macsBefore, macsAfter] = await macsBeforeAfter(lease, pruned, plan, source);
  const before = parametersOf(lease);
  const after = pruned.parameters();
  return {
    compensation,
    neurons: {
      before: plan.layers.reduce((s, l) => s + l.hidden, 0),
      after: plan.layers.reduce((s, l) => s + l.keep.length, 0),
    },
    parameters: {
      before: totalParams(before),
      after: totalParams(after),
      reduction: 1 - totalParams(after) / totalParams(before),
    },
    macs: {
      before: macsBefore,
      after: macsAfter,
      reduction: macsBefore > 0 ? 1 - macsAfter / macsBefore : 0,
      inputShape,
      source,
    },
    layers: plan.layers.map((l) => ({
      fc1: l.fc1,
      fc2: l.fc2,
      hiddenBefore: l.hidden,
      hiddenAfter: l.keep.length,
      macsBefore: blockMacs(l, l.tokensPerItem),
      macsAfter: blockMacs(l, l.tokensPerItem, l.keep.length),
      paramsBefore: blockParams(l, before),
      paramsAfter: blockParams(l, after),
    })),
  };
}
