/** The paper's DeiT-B numbers (ImageNet-1k, top-1 right after pruning, no fine-tuning), for comparison. */
export const PAPER_DEIT_B = {
  source: 'Variance-Based Pruning for Accelerating and Compressing Trained Networks, arXiv 2507.12988 (ICCV 2025)',
  original: 81.73,
  vbpByRatio: { 0.2: 80.87, 0.3: 78.97, 0.4: 75.78, 0.5: 66.4 } as Record<string, number>,
  at50: { vbp: 66.4, varianceNoShift: 26.04, magnitude: 0.37 },
  speedupAt55: { gpu: 1.44, cpu: 1.5, macsReduction: 0.349 },
};
