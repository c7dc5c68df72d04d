/**
 * Ranking criteria: each scores every hidden neuron of a block; the lowest scores are removed first.
 * A new criterion is one entry of CRITERIA.
 */
import { VbpError } from '../errors';
import { seededRandom } from '../util/random';
import type { Stats, LayerStats } from '../statistics/stats';

export type Criterion = 'variance' | 'magnitude' | 'random' | 'wifv' | 'snip';

interface ScoreContext {
  layer: LayerStats;
  /** Population variance per neuron. */
  variance: Float64Array;
  /** Seeded uniform [0, 1), shared by all blocks in block order. */
  random: () => number;
}

export const CRITERIA: Record<
  Criterion,
  { description: string; score: (neuron: number, context: ScoreContext) => number }
> = {
  variance: {
    description: "the paper's VBP: variance of the neuron's post-activation values",
    score: (j, { variance }) => variance[j],
  },
  magnitude: {
    description: 'squared weight norms: ||W1[j, :]||^2 + b1[j]^2 + ||W2[:, j]||^2',
    score: (j, { layer }) => layer.fc1RowSq[j] + layer.fc2ColSq[j],
  },
  wifv: {
    description: "FLAP's output-side error of replacing h_j by its mean: variance * ||W2[:, j]||^2",
    score: (j, { layer, variance }) => variance[j] * layer.fc2ColSq[j],
  },
  random: {
    description: 'uniform at random (seeded), a baseline',
    score: (_j, { random }) => random(),
  },
  snip: {
    description:
      "SNIP's connection sensitivity: sum over the neuron's fc1 row of |w * dL/dw|, cross-entropy of labelled batches (gatherStats with { snip: true })",
    score: (j, { layer }) => layer.saliency![j],
  },
};

export function isCriterion(value: unknown): value is Criterion {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(CRITERIA, value);
}

/** The criterion's score of every neuron of every block. */
export function neuronScores(stats: Stats, criterion: Criterion, seed = 0): Float64Array[] {
  const random = seededRandom(seed);
  const { score } = CRITERIA[criterion];
  if (criterion === 'snip' && stats.layers.some((l) => !l.saliency))
    throw new VbpError(
      'STATS',
      "criterion 'snip' needs SNIP scores: gather the statistics with { snip: true } from labelled batches (vbp stats --snip)",
    );
  return stats.layers.map((layer, i) => {
    const context = { layer, variance: stats.variance(i), random };
    return Float64Array.from({ length: layer.hidden }, (_, j) => score(j, context));
  });
}
