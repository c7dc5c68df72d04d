/**
 * Plans: which hidden neurons of which MLP block go. A plan is a plain, JSON-serialisable value made from
 * statistics; it can be saved, inspected, edited and applied with prune().
 */
import { VbpError } from './errors';
import { writeFileAtomically, readFileChecked, type WriteOptions } from './fsutil';
import type { ModelSignature } from './mlp';
import { seededRandom } from './random';
import type { Stats } from './stats';

/** variance (the paper's VBP), magnitude (squared weight norms), random (seeded), wifv (variance x ||W2[:, j]||^2, FLAP's). */
export type Criterion = 'variance' | 'magnitude' | 'random' | 'wifv';
/** global ranks all neurons of all blocks together (the paper's); per-layer removes the same fraction from each block. */
export type Scope = 'global' | 'per-layer';

export interface PlanOptions {
  criterion?: Criterion;
  scope?: Scope;
  /** Fraction of all MLP hidden neurons to remove, in [0, 1). */
  ratio?: number;
  /** Instead of ratio: remove neurons until the whole model's MACs drop by this fraction. */
  macsReduction?: number;
  /** Instead of ratio: remove neurons until the whole model's parameters drop by this fraction. */
  paramsReduction?: number;
  /** Round each block's kept width to a multiple of this (e.g. 8 or 64 for tensor cores). */
  roundTo?: number;
  /** Seed of the random criterion. */
  seed?: number;
}

export interface PlanLayer {
  fc1: string;
  fc2: string;
  hidden: number;
  inFeatures: number;
  outFeatures: number;
  tokensPerItem: number;
  paramsPerNeuron: number;
  /** Ascending indices of the neurons kept and removed. */
  keep: number[];
  pruned: number[];
  /** Calibration means of the removed neurons, in `pruned` order (for mean-shift compensation). */
  prunedMeans: number[];
}

export interface Plan {
  format: 'torch-vbp-plan';
  version: 1;
  criterion: Criterion;
  scope: Scope;
  target: { kind: 'ratio' | 'macs' | 'params'; value: number };
  roundTo: number;
  seed?: number;
  /** The model the statistics came from; prune() refuses other models. */
  model: ModelSignature;
  inputShape: number[];
  modelMacs: number;
  modelParams: number;
  layers: PlanLayer[];
  totals: { neurons: number; pruned: number; ratio: number; macsRemoved: number; paramsRemoved: number };
}

const CRITERIA: Criterion[] = ['variance', 'magnitude', 'random', 'wifv'];
const SCOPES: Scope[] = ['global', 'per-layer'];

function planError(message: string): never {
  throw new VbpError('PLAN', message);
}

/** The criterion's score of every neuron; the lowest scores are removed first. */
export function neuronScores(stats: Stats, criterion: Criterion, seed = 0): Float64Array[] {
  const random = seededRandom(seed);
  return stats.layers.map((layer, i) => {
    const variance = stats.variance(i);
    const scores = new Float64Array(layer.hidden);
    for (let j = 0; j < layer.hidden; j++) {
      switch (criterion) {
        case 'variance':
          scores[j] = variance[j];
          break;
        case 'magnitude':
          scores[j] = layer.fc1RowSq[j] + layer.fc2ColSq[j];
          break;
        case 'wifv':
          scores[j] = variance[j] * layer.fc2ColSq[j];
          break;
        case 'random':
          scores[j] = random();
          break;
      }
    }
    return scores;
  });
}

interface Neuron {
  score: number;
  layer: number;
  index: number;
}

/** Ascending by score, ties by block then neuron index (the order the Python reference uses). */
function byScore(a: Neuron, b: Neuron): number {
  return a.score - b.score || a.layer - b.layer || a.index - b.index;
}

function checkOptions(options: PlanOptions): { kind: 'ratio' | 'macs' | 'params'; value: number } {
  if (options.criterion !== undefined && !CRITERIA.includes(options.criterion)) {
    planError(`unknown criterion '${options.criterion}' (expected ${CRITERIA.join(', ')})`);
  }
  if (options.scope !== undefined && !SCOPES.includes(options.scope)) {
    planError(`unknown scope '${options.scope}' (expected ${SCOPES.join(', ')})`);
  }
  const targets = (
    [
      ['ratio', options.ratio],
      ['macs', options.macsReduction],
      ['params', options.paramsReduction],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (targets.length !== 1) planError('give exactly one of ratio, macsReduction or paramsReduction');
  const [kind, value] = targets[0];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    planError(`${kind === 'ratio' ? 'ratio' : kind + 'Reduction'} must be a number in [0, 1), got ${String(value)}`);
  }
  if (options.roundTo !== undefined && (!Number.isInteger(options.roundTo) || options.roundTo < 1)) {
    planError(`roundTo must be a positive integer, got ${String(options.roundTo)}`);
  }
  return { kind, value };
}

/** Decides which neurons to remove. Every block keeps at least one neuron. */
export function plan(stats: Stats, options: PlanOptions = {}): Plan {
  const target = checkOptions(options);
  const criterion = options.criterion ?? 'variance';
  const scope = options.scope ?? 'global';
  const roundTo = options.roundTo ?? 1;
  const bad = stats.nonFiniteLayers();
  if (bad.length > 0) {
    throw new VbpError('NON_FINITE', `the statistics hold NaN/Inf activations in ${bad.map((l) => `${l.fc1} (${l.nonFinite} values)`).join(', ')}; check the calibration data and the model`);
  }
  if (stats.layers.some((l) => l.count === 0)) planError('the statistics are empty (no calibration samples)');

  const layers = stats.layers;
  const macsPerNeuron = layers.map((l, i) => stats.tokensPerItem(i) * (l.inFeatures + l.outFeatures));
  const paramsPerNeuron = layers.map((l) => l.paramsPerNeuron);
  const scores = neuronScores(stats, criterion, options.seed ?? 0);
  const totalNeurons = stats.totalNeurons;
  const removedCounts = new Array<number>(layers.length).fill(0);

  const reached = (pruned: number, macs: number, params: number): boolean => {
    if (target.kind === 'ratio') return pruned >= Math.floor(target.value * totalNeurons);
    if (target.kind === 'macs') return macs >= target.value * stats.info.modelMacs;
    return params >= target.value * stats.info.modelParams;
  };

  if (scope === 'global') {
    const neurons: Neuron[] = [];
    scores.forEach((s, layer) => s.forEach((score, index) => neurons.push({ score, layer, index })));
    neurons.sort(byScore);
    let pruned = 0;
    let macs = 0;
    let params = 0;
    for (const n of neurons) {
      if (reached(pruned, macs, params)) break;
      if (layers[n.layer].hidden - removedCounts[n.layer] <= 1) continue;
      removedCounts[n.layer]++;
      pruned++;
      macs += macsPerNeuron[n.layer];
      params += paramsPerNeuron[n.layer];
    }
    // A ratio is met as far as keeping one neuron per block allows (totals.ratio says how far); a MAC or
    // parameter budget that cannot be met is an error.
    if (target.kind !== 'ratio' && !reached(pruned, macs, params)) unreachable(target, stats);
  } else {
    const countsAt = (ratio: number): number[] => layers.map((l) => Math.min(Math.floor(ratio * l.hidden), l.hidden - 1));
    let counts = countsAt(target.value);
    if (target.kind !== 'ratio') {
      const candidates = [...new Set(layers.flatMap((l) => Array.from({ length: l.hidden }, (_, k) => k / l.hidden)))].sort((a, b) => a - b);
      const found = candidates.find((r) => {
        const c = countsAt(r);
        return reached(0, c.reduce((s, k, i) => s + k * macsPerNeuron[i], 0), c.reduce((s, k, i) => s + k * paramsPerNeuron[i], 0));
      });
      if (found === undefined) unreachable(target, stats);
      counts = countsAt(found);
    }
    counts.forEach((k, i) => (removedCounts[i] = k));
  }

  const planLayers: PlanLayer[] = layers.map((l, i) => {
    let keepCount = l.hidden - removedCounts[i];
    if (roundTo > 1) {
      keepCount = Math.round(keepCount / roundTo) * roundTo;
      keepCount = Math.min(l.hidden, Math.max(keepCount, Math.min(roundTo, l.hidden)));
    }
    // Within a block, the global order is (score, index): the lowest (hidden - keepCount) go.
    const order = Array.from({ length: l.hidden }, (_, j) => j).sort((a, b) => scores[i][a] - scores[i][b] || a - b);
    const prunedSet = new Set(order.slice(0, l.hidden - keepCount));
    const keep: number[] = [];
    const pruned: number[] = [];
    for (let j = 0; j < l.hidden; j++) (prunedSet.has(j) ? pruned : keep).push(j);
    return {
      fc1: l.fc1,
      fc2: l.fc2,
      hidden: l.hidden,
      inFeatures: l.inFeatures,
      outFeatures: l.outFeatures,
      tokensPerItem: stats.tokensPerItem(i),
      paramsPerNeuron: l.paramsPerNeuron,
      keep,
      pruned,
      prunedMeans: pruned.map((j) => l.mean[j]),
    };
  });

  const prunedTotal = planLayers.reduce((s, l) => s + l.pruned.length, 0);
  return {
    format: 'torch-vbp-plan',
    version: 1,
    criterion,
    scope,
    target,
    roundTo,
    ...(criterion === 'random' ? { seed: options.seed ?? 0 } : {}),
    model: stats.signature,
    inputShape: [...stats.info.inputShape],
    modelMacs: stats.info.modelMacs,
    modelParams: stats.info.modelParams,
    layers: planLayers,
    totals: {
      neurons: totalNeurons,
      pruned: prunedTotal,
      ratio: prunedTotal / totalNeurons,
      macsRemoved: planLayers.reduce((s, l, i) => s + l.pruned.length * macsPerNeuron[i], 0),
      paramsRemoved: planLayers.reduce((s, l, i) => s + l.pruned.length * paramsPerNeuron[i], 0),
    },
  };
}

function unreachable(target: { kind: string; value: number }, stats: Stats): never {
  const macsMax = stats.layers.reduce((s, l, i) => s + (l.hidden - 1) * stats.tokensPerItem(i) * (l.inFeatures + l.outFeatures), 0);
  const paramsMax = stats.layers.reduce((s, l) => s + (l.hidden - 1) * l.paramsPerNeuron, 0);
  const most = target.kind === 'macs' ? macsMax / stats.info.modelMacs : paramsMax / stats.info.modelParams;
  const what = target.kind === 'macs' ? 'MACs' : 'parameters';
  planError(`cannot remove ${(target.value * 100).toFixed(1)} % of the model's ${what} by pruning MLP neurons: at most ${(most * 100).toFixed(1)} % is possible`);
}

function isIndexList(value: unknown, hidden: number): value is number[] {
  return Array.isArray(value) && value.every((v, i) => Number.isInteger(v) && v >= 0 && v < hidden && (i === 0 || v > value[i - 1]));
}

/** Checks that a value (e.g. parsed from a file) is a well-formed plan; throws PLAN naming what is wrong. */
export function validatePlan(value: unknown, source = 'plan'): Plan {
  const fail = (why: string): never => planError(`${source} is not a valid plan: ${why}`);
  if (typeof value !== 'object' || value === null) return fail('not an object');
  const p = value as Plan;
  if (p.format !== 'torch-vbp-plan') fail(`format is '${String(p.format)}', expected 'torch-vbp-plan'`);
  if (p.version !== 1) fail(`version ${String(p.version)} is not supported`);
  if (!Array.isArray(p.layers) || p.layers.length === 0) fail('it has no layers');
  if (!p.model || !Array.isArray(p.model.layers)) fail('model signature is missing');
  if (!Array.isArray(p.inputShape)) fail('inputShape is missing');
  p.layers.forEach((l, i) => {
    const where = `layers[${i}]`;
    if (typeof l.fc1 !== 'string' || typeof l.fc2 !== 'string') fail(`${where}: fc1 and fc2 must be strings`);
    if (!Number.isInteger(l.hidden) || l.hidden < 1) fail(`${where}: hidden must be a positive integer`);
    if (!isIndexList(l.keep, l.hidden)) fail(`${where}.keep must hold ascending, unique indices in [0, ${l.hidden})`);
    if (!isIndexList(l.pruned, l.hidden)) fail(`${where}.pruned must hold ascending, unique indices in [0, ${l.hidden})`);
    if (l.keep.length === 0) fail(`${where} keeps no neuron; at least one must stay`);
    if (l.keep.length + l.pruned.length !== l.hidden || l.keep.some((j) => l.pruned.includes(j))) {
      fail(`${where}: keep and pruned must split the ${l.hidden} neurons`);
    }
    if (!Array.isArray(l.prunedMeans) || l.prunedMeans.length !== l.pruned.length || !l.prunedMeans.every(Number.isFinite)) {
      fail(`${where}.prunedMeans must hold one finite mean per pruned neuron`);
    }
  });
  return p;
}

export async function savePlan(p: Plan, file: string, options: WriteOptions = {}): Promise<void> {
  await writeFileAtomically(file, JSON.stringify(p, null, 1) + '\n', options);
}

export async function loadPlan(file: string): Promise<Plan> {
  const text = readFileChecked(file, 'plan file').toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new VbpError('PLAN', `'${file}' is not a valid plan: not JSON (${(error as Error).message})`);
  }
  return validatePlan(value, `'${file}'`);
}
