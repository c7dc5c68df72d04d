/**
 * How many neurons each block loses, for a target (a ratio of neurons, or a MAC or parameter reduction),
 * a scope (global ranking or the same fraction per block) and a width rounding. Targets are met at least,
 * or refused with the most that is possible; they are never silently missed.
 */
import { VbpError } from '../errors';

export type Scope = 'global' | 'per-layer';
type TargetKind = 'ratio' | 'macs' | 'params';

export interface Target {
  kind: TargetKind;
  value: number;
}

/** What selection needs to know of each block. */
interface BlockCosts {
  hidden: number;
  macsPerNeuron: number;
  paramsPerNeuron: number;
}

interface SelectionProblem {
  blocks: BlockCosts[];
  /** Scores per block; the lowest go first (ties by block, then neuron index). */
  scores: Float64Array[];
  target: Target;
  scope: Scope;
  /** Kept widths are multiples of this (or the whole block, unpruned). */
  roundTo: number;
  modelMacs: number;
  modelParams: number;
}

/**
 * Widths a block may keep: multiples of `roundTo` from `roundTo` up, and its full width. The largest one
 * not above `wanted`, or undefined when even the smallest is above it.
 */
function roundedWidth(hidden: number, wanted: number, roundTo: number): number | undefined {
  if (wanted >= hidden) return hidden;
  const multiple = Math.floor(wanted / roundTo) * roundTo;
  return multiple >= Math.min(roundTo, hidden) && multiple >= 1 ? multiple : undefined;
}

/** Fewest neurons a block can keep. */
function minimumWidth(hidden: number, roundTo: number): number {
  return roundedWidth(hidden, 1, roundTo) ?? roundedWidth(hidden, roundTo, roundTo) ?? hidden;
}

/** Neurons a block loses when `wanted` of them are selected: the kept width rounded down to a valid one. */
function removedFor(block: BlockCosts, wanted: number, roundTo: number): number {
  return block.hidden - (roundedWidth(block.hidden, block.hidden - wanted, roundTo) ?? block.hidden);
}

function amounts(problem: SelectionProblem, removed: number[]): { neurons: number; macs: number; params: number } {
  return removed.reduce(
    (t, k, i) => ({
      neurons: t.neurons + k,
      macs: t.macs + k * problem.blocks[i].macsPerNeuron,
      params: t.params + k * problem.blocks[i].paramsPerNeuron,
    }),
    { neurons: 0, macs: 0, params: 0 },
  );
}

function reached(problem: SelectionProblem, removed: number[]): boolean {
  const { target } = problem;
  const got = amounts(problem, removed);
  if (target.kind === 'ratio')
    return got.neurons >= Math.floor(target.value * problem.blocks.reduce((s, b) => s + b.hidden, 0));
  if (target.kind === 'macs') return got.macs >= target.value * problem.modelMacs;
  return got.params >= target.value * problem.modelParams;
}

/** A target in words: "20.0 % of the MLP neurons", "30.0 % of the model's MACs". */
export function targetText(target: Target): string {
  const what = { ratio: 'of the MLP neurons', macs: "of the model's MACs", params: "of the model's parameters" }[
    target.kind
  ];
  return `${(target.value * 100).toFixed(1)} % ${what}`;
}

function unreachable(problem: SelectionProblem): never {
  const most = problem.blocks.map((b) => b.hidden - minimumWidth(b.hidden, problem.roundTo));
  const got = amounts(problem, most);
  const total = problem.blocks.reduce((s, b) => s + b.hidden, 0);
  const share = {
    ratio: got.neurons / total,
    macs: got.macs / problem.modelMacs,
    params: got.params / problem.modelParams,
  }[problem.target.kind];
  const rounding = problem.roundTo > 1 ? ` with kept widths rounded to multiples of ${problem.roundTo}` : '';
  throw new VbpError(
    'PLAN',
    `cannot remove ${targetText(problem.target)}${problem.target.kind === 'ratio' ? '' : ' by pruning MLP neurons'}${rounding}: at most ${(share * 100).toFixed(1)} % is possible ` +
      `(every block keeps at least ${problem.roundTo > 1 ? `${problem.roundTo} neurons or its full width` : 'one neuron'})`,
  );
}

/** Global: walk all neurons by score, counting what each block really loses after rounding, until the target is met. */
function selectGlobal(problem: SelectionProblem): number[] {
  const { blocks, scores, roundTo } = problem;
  const order: Array<{ score: number; block: number }> = [];
  scores.forEach((s, block) => s.forEach((score) => order.push({ score, block })));
  // Ascending by score, ties by block then neuron index (the sort is stable and `order` is in that order).
  order.sort((a, b) => a.score - b.score || a.block - b.block);
  const selected = new Array<number>(blocks.length).fill(0);
  const removed = new Array<number>(blocks.length).fill(0);
  if (reached(problem, removed)) return removed;
  for (const { block } of order) {
    const b = blocks[block];
    if (b.hidden - (selected[block] + 1) < minimumWidth(b.hidden, roundTo)) continue;
    selected[block]++;
    removed[block] = removedFor(b, selected[block], roundTo);
    if (reached(problem, removed)) return removed;
  }
  return unreachable(problem);
}

/**
 * Per layer: the same fraction of every block (rounded down per block), the smallest fraction that meets the target.
 */
function selectPerLayer(problem: SelectionProblem): number[] {
  const { blocks, roundTo } = problem;
  const countsAt = (ratio: number): number[] | undefined => {
    const counts = blocks.map((b) => Math.floor(ratio * b.hidden));
    if (counts.some((k, i) => blocks[i].hidden - k < minimumWidth(blocks[i].hidden, roundTo))) return undefined;
    return counts.map((k, i) => removedFor(blocks[i], k, roundTo));
  };
  if (problem.target.kind === 'ratio') {
    const counts = countsAt(problem.target.value);
    if (!counts) return unreachable(problem);
    return counts;
  }
  const candidates = [...new Set(blocks.flatMap((b) => Array.from({ length: b.hidden }, (_, k) => k / b.hidden)))].sort(
    (a, b) => a - b,
  );
  for (const ratio of candidates) {
    const counts = countsAt(ratio);
    if (!counts) break;
    if (reached(problem, counts)) return counts;
  }
  return unreachable(problem);
}

/** Neurons each block loses; the caller removes each block's lowest-scored ones. */
export function selectRemovals(problem: SelectionProblem): number[] {
  return problem.scope === 'global' ? selectGlobal(problem) : selectPerLayer(problem);
}
