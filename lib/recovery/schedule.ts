/**
 * Learning-rate schedules of finetune(), stepped once per batch. The formula is the one
 * test/python/finetune_reference.py uses, so that both runs see the same rates.
 */
export type Schedule = 'cosine' | 'constant';
export const SCHEDULES: Schedule[] = ['cosine', 'constant'];

/**
 * The rate of step `step` (0-based) of `total`: a linear warm-up over the first `warmup` steps
 * (lr * (step + 1) / warmup), then constant, or a cosine from lr towards 0 over the remaining steps
 * (lr * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2).
 */
export function learningRate(schedule: Schedule, lr: number, step: number, total: number, warmup: number): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  if (schedule === 'constant') return lr;
  const span = Math.max(1, total - warmup);
  return (lr * (1 + Math.cos((Math.PI * (step - warmup)) / span))) / 2;
}
