/**
 * What statistics hold: per MLP block, count, mean and M2 of every hidden neuron (float64), its weight norms
 * and optionally the co-moment matrix; and what they were gathered on. Plain values, shared by the Stats
 * class, its file format and its merge.
 */
import type { MlpBlock } from '../model/mlp';

export interface LayerStats extends MlpBlock {
  /** Samples per neuron (tokens of all calibration images). */
  count: number;
  /** Calibration items (images) that reached this layer. */
  items: number;
  /** NaN or Inf values seen in this layer's hidden activations. */
  nonFinite: number;
  mean: Float64Array;
  /** Sum of squared deviations from the mean; variance = m2 / count. */
  m2: Float64Array;
  /** Per neuron: ||fc1.weight[j, :]||^2 + fc1.bias[j]^2 and ||fc2.weight[:, j]||^2 (for weight-based criteria). */
  fc1RowSq: Float64Array;
  fc2ColSq: Float64Array;
  /** Parameters one neuron carries: its fc1 row and bias entry and its fc2 column. */
  paramsPerNeuron: number;
  /**
   * With `covariance: true`: the co-moment matrix, sum over its samples of (h - their mean)(h - their mean)^T,
   * row-major [hidden * hidden]; the population covariance is comoment / comomentCount. Its samples are all
   * of `count` (then comomentMean is `mean` and its diagonal m2), or a share of them (covarianceSampling).
   */
  comoment?: Float64Array;
  comomentCount?: number;
  comomentMean?: Float64Array;
  /**
   * With `snip: true`: SNIP's score per neuron, sum over its fc1 row (weights and bias) of |w * dL/dw| for the
   * mean cross-entropy of each labelled batch, added up over `saliencyBatches` batches.
   */
  saliency?: Float64Array;
  saliencyBatches?: number;
}

export interface StatsInfo {
  /** Shape of one calibration item, e.g. [3, 224, 224]. */
  inputShape: number[];
  /** Batches and items gathered (a resumed run counts the earlier ones too). */
  batches: number;
  items: number;
  /** The whole model's MACs and parameters for one item, when the statistics were gathered. */
  modelMacs: number;
  modelParams: number;
}
