/**
 * MLP blocks (fc1 -> element-wise ops -> fc2) and the signature that ties statistics and plans to the
 * model they were made from.
 */
import { VbpError } from '../errors';

export type { MlpBlock, MlpSpec } from '../native/types';

/** What identifies an MLP layer of a model: paths, widths and its weights' squared norms. */
export interface LayerSignature {
  fc1: string;
  fc2: string;
  inFeatures: number;
  hidden: number;
  outFeatures: number;
  /** Sum of squares of fc1's weight and bias, and of fc2's weight (float64). */
  fc1SquaredNorm: number;
  fc2SquaredNorm: number;
}

export interface ModelSignature {
  layers: LayerSignature[];
}

/** Norm sums differ slightly across devices and BLAS builds; weights of another model differ far more. */
const NORM_TOLERANCE = 1e-6;

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= NORM_TOLERANCE * Math.max(Math.abs(a), Math.abs(b), 1e-30);
}

/** Why two signatures describe different models, or null if they describe the same one. */
function signatureMismatch(expected: ModelSignature, actual: ModelSignature): string | null {
  if (expected.layers.length !== actual.layers.length) {
    return `${expected.layers.length} MLP blocks expected, the model has ${actual.layers.length}`;
  }
  for (let i = 0; i < expected.layers.length; i++) {
    const e = expected.layers[i];
    const a = actual.layers[i];
    if (e.fc1 !== a.fc1 || e.fc2 !== a.fc2)
      return `block ${i} is ${e.fc1} -> ${e.fc2} there, ${a.fc1} -> ${a.fc2} here`;
    if (e.hidden !== a.hidden || e.inFeatures !== a.inFeatures || e.outFeatures !== a.outFeatures) {
      return `${e.fc1}: widths ${e.inFeatures}/${e.hidden}/${e.outFeatures} there, ${a.inFeatures}/${a.hidden}/${a.outFeatures} here`;
    }
    if (!close(e.fc1SquaredNorm, a.fc1SquaredNorm) || !close(e.fc2SquaredNorm, a.fc2SquaredNorm)) {
      return `${e.fc1}: the weights differ`;
    }
  }
  return null;
}

/** Throws `code` saying that `what` (e.g. 'the plan', or 'the statistics' with plural) belongs to another model. */
export function checkSignature(
  expected: ModelSignature,
  actual: ModelSignature,
  what: string,
  code: 'STATS' | 'PLAN',
  plural = false,
): void {
  const mismatch = signatureMismatch(expected, actual);
  if (mismatch) throw new VbpError(code, `${what} ${plural ? 'belong' : 'belongs'} to another model: ${mismatch}`);
}

/** The signature of blocks from their per-neuron squared weight norms (what neuronNorms() returns). */
export function signatureFromNorms(
  blocks: ReadonlyArray<Omit<LayerSignature, 'fc1SquaredNorm' | 'fc2SquaredNorm'>>,
  norms: ReadonlyArray<{ fc1RowSq: Float64Array; fc2ColSq: Float64Array }>,
): ModelSignature {
  return {
    layers: blocks.map((b, i) => ({
      fc1: b.fc1,
      fc2: b.fc2,
      inFeatures: b.inFeatures,
      hidden: b.hidden,
      outFeatures: b.outFeatures,
      fc1SquaredNorm: sum(norms[i].fc1RowSq),
      fc2SquaredNorm: sum(norms[i].fc2ColSq),
    })),
  };
}

export function sum(values: Float64Array): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return total;
}
