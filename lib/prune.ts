/**
 * Applies a plan: a new, genuinely smaller model (fc1 rows and fc2 columns removed), with the removed
 * neurons' means folded into fc2's bias (mean-shift compensation) unless asked not to.
 */
import { VbpError } from './errors';
import { checkSignature } from './mlp';
import { Model, macsOf, parameterCountOf, signatureOf, type ModelLease } from './model';
import { validatePlan, type Plan } from './plan';

export type Compensation = 'mean' | 'none';

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
  /** This block's fc1 + fc2 MACs and parameters for one input. */
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
  const compensation = options.compensation ?? 'mean';
  if (compensation !== 'mean' && compensation !== 'none') {
    throw new VbpError('INVALID_ARGUMENT', `compensation must be 'mean' or 'none', got '${String(compensation)}'`);
  }
  validatePlan(plan);
  return model.withLease((lease) => pruneWith(lease, model, plan, compensation, options));
}

async function pruneWith(lease: ModelLease, model: Model, plan: Plan, compensation: Compensation, options: PruneOptions): Promise<PruneResult> {
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
  const pruned = new Model(handle, model.source);

  const inputShape = [1, ...plan.inputShape];
  const [macsBefore, macsAfter] = options.skipMacs ? [0, 0] : [(await macsOf(lease, inputShape)).total, (await pruned.macs(inputShape)).total];
  const paramsBefore = parameterCountOf(lease);
  const paramsAfter = pruned.parameterCount();
  const blockMacs = (l: Plan['layers'][number], hidden: number): number => l.tokensPerItem * hidden * (l.inFeatures + l.outFeatures);
  const blockParams = (l: Plan['layers'][number], hidden: number): number => hidden * l.paramsPerNeuron;
  return {
    model: pruned,
    report: {
      compensation,
      neurons: {
        before: plan.layers.reduce((s, l) => s + l.hidden, 0),
        after: plan.layers.reduce((s, l) => s + l.keep.length, 0),
      },
      parameters: { before: paramsBefore, after: paramsAfter, reduction: 1 - paramsAfter / paramsBefore },
      macs: { before: macsBefore, after: macsAfter, reduction: macsBefore > 0 ? 1 - macsAfter / macsBefore : 0, inputShape },
      layers: plan.layers.map((l) => ({
        fc1: l.fc1,
        fc2: l.fc2,
        hiddenBefore: l.hidden,
        hiddenAfter: l.keep.length,
        macsBefore: blockMacs(l, l.hidden),
        macsAfter: blockMacs(l, l.keep.length),
        paramsBefore: blockParams(l, l.hidden),
        paramsAfter: blockParams(l, l.keep.length),
      })),
    },
  };
}
