/** Chan's formula: the exact combination of two blocks' statistics gathered on different samples. */
import type { LayerStats } from './layer-stats';

/** One block's statistics from two sets of samples, as one pass over both would give them (up to float64 rounding). */
export function mergeLayer(a: LayerStats, b: LayerStats): LayerStats {
  if (a.count === 0) return { ...b, items: a.items + b.items, nonFinite: a.nonFinite + b.nonFinite };
  if (b.count === 0) return { ...a, items: a.items + b.items, nonFinite: a.nonFinite + b.nonFinite };
  const n = a.count + b.count;
  const weight = (a.count * b.count) / n;
  const delta = b.mean.map((m, j) => m - a.mean[j]); // Chan's formula per neuron
  const mean = a.mean.map((m, j) => m + (delta[j] * b.count) / n);
  const m2 = a.m2.map((m, j) => m + b.m2[j] + delta[j] * delta[j] * weight);
  const merged: LayerStats = {
    ...a,
    count: n,
    items: a.items + b.items,
    nonFinite: a.nonFinite + b.nonFinite,
    mean,
    m2,
  };
  if (a.comoment && b.comoment) Object.assign(merged, mergeCovariances(a, b));
  return withSaliency(merged, a, b);
}

/** SNIP scores are sums over batches: they add up. */
function withSaliency(merged: LayerStats, a: LayerStats, b: LayerStats): LayerStats {
  if (!a.saliency || !b.saliency) {
    const { saliency: _s, saliencyBatches: _n, ...rest } = merged;
    return rest;
  }
  return {
    ...merged,
    saliency: a.saliency.map((v, j) => v + b.saliency![j]),
    saliencyBatches: (a.saliencyBatches ?? 0) + (b.saliencyBatches ?? 0),
  };
}

/** Chan's formula for co-moment matrices, each of its own samples: A + B + delta delta^T * na nb / n. */
function mergeCovariances(
  a: LayerStats,
  b: LayerStats,
): Pick<LayerStats, 'comoment' | 'comomentCount' | 'comomentMean'> {
  const na = a.comomentCount ?? a.count;
  const nb = b.comomentCount ?? b.count;
  const meanA = a.comomentMean ?? a.mean;
  const meanB = b.comomentMean ?? b.mean;
  if (na === 0) return { comoment: b.comoment, comomentCount: nb, comomentMean: meanB };
  if (nb === 0) return { comoment: a.comoment, comomentCount: na, comomentMean: meanA };
  const n = na + nb;
  const weight = (na * nb) / n;
  const delta = meanB.map((m, j) => m - meanA[j]);
  const hidden = delta.length;
  const merged = new Float64Array(hidden * hidden);
  for (let r = 0; r < hidden; r++) {
    const scaled = delta[r] * weight;
    for (let c = 0, at = r * hidden; c < hidden; c++, at++)
      merged[at] = a.comoment![at] + b.comoment![at] + scaled * delta[c];
  }
  return { comoment: merged, comomentCount: n, comomentMean: meanA.map((m, j) => m + (delta[j] * nb) / n) };
}
