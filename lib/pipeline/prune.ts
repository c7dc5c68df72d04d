/**
 * Applies a plan: a new, genuinely smaller model (fc1 rows and fc2 columns removed), with the removed
 * neurons' means folded into fc2's bias (mean-shift compensation) unless asked not to. The input model
 * is not changed; the new one carries the input's model card, noting how it was pruned.
 */
import { VbpError } from '../errors';
import type { ModelCard } from '../formats/model-card';
import { checkOptionKeys } from '../util/options';
import { blockMacs, blockParams, totalParams } from './accounting';
import { checkSignature } from './mlp';
import { Model, macsOf, parametersOf, signatureOf, type ModelLease } from './model';
import { validatePlan, type Plan } from './plan';

export type Compensation = 'mean' | 'none';
const COMPENSATIONS: Compensation[] = ['mean', 'none'];

export interface PruneOptions {
  /** 'mean' (default, VBP): fc2.bias += W2[:, P] @ mean[P]; 'none': slice only. */
  compensation?: Compensation;
  /** Skip measuring MACs before and after (one forward each). */
  skipMacs?: boolean;
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
  /** Whole-model MACs for one input of the calibration shape, measured from the ops LibTorch runs. */
  macs: { before: number; after: number; reduction: number; inputShape: number[] };
  layers: LayerReport[];
}

export interface PruneResult {
  model: Model;
  report: PruneReport;
}

export async function prune(model: Model, plan: Plan, options: PruneOptions = {}): Promise<PruneResult> {
  checkOptionKeys(options, ['compensation', 'skipMacs'], 'prune()');
  const compensation = options.compensation ?? 'mean';
  if (!COMPENSATIONS.includes(compensation)) {
    throw new VbpError('INVALID_ARGUMENT', `compensation must be one of ${COMPENSATIONS.join(', ')}, got '${String(compensation)}'`);
  }
  validatePlan(plan);
  return model.withLease((lease) => pruneWith(lease, model, plan, compensation, Boolean(options.skipMacs)));
}

/** The input's card with a note of the pruning (the card says what the model expects; that has not changed). */
function prunedCard(card: ModelCard | undefined, plan: Plan, compensation: Compensation): ModelCard | undefined {
  if (!card) return undefined;
  const history = Array.isArray(card.pruning) ? card.pruning : card.pruning ? [card.pruning] : [];
  return {
    ...card,
    pruning: [
      ...history,
      { tool: 'torch-vbp', criterion: plan.criterion, scope: plan.scope, target: plan.target, roundTo: plan.roundTo, compensation, neurons: { before: plan.totals.neurons, after: plan.totals.neurons - plan.totals.pruned } },
    ],
  };
}

async function pruneWith(lease: ModelLease, model: Model, plan: Plan, compensation: Compensation, skipMacs: boolean): Promise<PruneResult> {
  const specs = plan.layers.map(({ fc1, fc2 }) => ({ fc1, fc2 }));
  const signature = await signatureOf(lease, specs).catch((error: VbpError) => {
    if (error.code !== 'MLP_SPEC' && error.code !== 'NO_MLP') throw error;
    throw new VbpError('PLAN', `the plan belongs to another model: ${error.message}`, { cause: error });
  });
  checkSignature(plan.model, signature, 'the plan', 'PLAN');

  const cuts = plan.layers.map((l) => ({
    fc1: l.fc1,
    fc2: l.fc2,
    keep: Int32Array.from(l.keep),
    prunedMeans: Float64Array.from(l.prunedMeans),
  }));
  const handle = await lease.enqueue((h) => h.prune(cuts, compensation));
  const pruned = new Model(handle, model.source, prunedCard(model.card, plan, compensation));
  try {
    return { model: pruned, report: await reportOf(lease, pruned, plan, compensation, skipMacs) };
  } catch (error) {
    await pruned.dispose();
    throw error;
  }
}

async function reportOf(lease: ModelLease, pruned: Model, plan: Plan, compensation: Compensation, skipMacs: boolean): Promise<PruneReport> {
  const inputShape = [1, ...plan.inputShape];
  const macsBefore = skipMacs ? 0 : (await macsOf(lease, inputShape)).total;
  const macsAfter = skipMacs ? 0 : (await pruned.macs(inputShape)).total;
  const before = parametersOf(lease);
  const after = pruned.parameters();
  return {
    compensation,
    neurons: {
      before: plan.layers.reduce((s, l) => s + l.hidden, 0),
      after: plan.layers.reduce((s, l) => s + l.keep.length, 0),
    },
    parameters: { before: totalParams(before), after: totalParams(after), reduction: 1 - totalParams(after) / totalParams(before) },
    macs: { before: macsBefore, after: macsAfter, reduction: macsBefore > 0 ? 1 - macsAfter / macsBefore : 0, inputShape },
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
