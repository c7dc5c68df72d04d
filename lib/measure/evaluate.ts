/** Top-1/top-5 accuracy and throughput of a classifier over a data set, plus output fidelity measures. */
import { VbpError } from '../errors';
import { prefetch } from '../data/prefetch';
import { batches, itemCount, type BatchOptions, type Dataset } from '../data/dataset';
import { selectionOf, shardOf } from '../data/shard';
import { agreeAcrossRanks, parameterSignature } from '../distributed/agreement';
import { allgatherBytes, distributedInfo } from '../distributed/group';
import type { Model } from '../model/model';
import { expectTensor } from '../tensor';
import { checkOptionKeys } from '../util/options';

export interface EvaluateProgress {
  items: number;
  total: number;
  elapsedMs: number;
}

export interface EvaluateOptions extends Pick<BatchOptions, 'batchSize' | 'limit' | 'skipBadItems' | 'onSkip'> {
  onProgress?: (progress: EvaluateProgress) => void;
  signal?: AbortSignal;
  /** Keep every item's output row (for fidelity comparisons between models). */
  keepLogits?: boolean;
  /**
   * When the model card states a normalisation (mean/std), check the first batch against it (default true):
   * data left unnormalised (values in [0, 1]) or outside the range the card's normalisation gives pixels in
   * [0, 1] (pixels in 0..255, normalised twice or otherwise) is refused with DATA before any forward.
   * false skips the check, for data prepared deliberately another way.
   */
  checkNormalisation?: boolean;
  /**
   * Split the items across the ranks of the process group (initDistributed()) and sum what they found; default:
   * whenever this process has joined one. Rank r evaluates items r, r + W, ...; every rank gets the totals, and
   * `predictions`/`logits` in data-set order (in rank order when items were skipped).
   */
  distributed?: boolean;
}

export interface Evaluation {
  items: number;
  /** Fractions in [0, 1]. */
  top1: number;
  top5: number;
  correct1: number;
  correct5: number;
  classes: number;
  elapsedMs: number;
  itemsPerSecond: number;
  predictions: Int32Array;
  logits?: Float32Array;
}

/** Runs `model` over labelled data. Items without a label (-1) count towards neither accuracy. */
export async function evaluate(model: Model, data: Dataset, options: EvaluateOptions = {}): Promise<Evaluation> {
  checkOptionKeys(
    options,
    [
      'batchSize',
      'limit',
      'skipBadItems',
      'onSkip',
      'onProgress',
      'signal',
      'keepLogits',
      'checkNormalisation',
      'distributed',
    ],
    'evaluate()',
  );
  const group = options.distributed === false ? null : distributedInfo();
  if (!group || group.worldSize === 1) return (await evaluateHere(model, data, options)).evaluation;
  // This rank's part of the items one process would evaluate (the first `limit`).
  const total = itemCount(data, options);
  await agreeAcrossRanks('evaluate()', {
    items: total,
    itemShape: data.itemShape,
    batchSize: options.batchSize ?? null,
    keepLogits: options.keepLogits ?? false,
    skipBadItems: options.skipBadItems ?? false,
    model: parameterSignature(model),
  });
  const ids = Int32Array.from({ length: total }, (_, i) => i);
  const part = shardOf(selectionOf(data, ids, data.description), group.rank, group.worldSize);
  const local = await evaluateHere(model, part, { ...options, limit: undefined });
  return mergeAcrossRanks(local, total, group.worldSize);
}

/** What one rank found, with what the merge needs besides the Evaluation. */
interface LocalEvaluation {
  evaluation: Evaluation;
  labelled: number;
}

async function evaluateHere(model: Model, data: Dataset, options: EvaluateOptions): Promise<LocalEvaluation> {
  if (data.labelled === false) {
    throw new VbpError(
      'DATA',
      `${data.description} has no labels: evaluate() measures accuracy against labels (for .npy data, give a labels file)`,
    );
  }
  const total = itemCount(data, options);
  const started = performance.now();
  let items = 0;
  let labelled = 0;
  let correct1 = 0;
  let correct5 = 0;
  let classes = 0;
  const predictions = new Int32Array(total);
  let logits: Float32Array | undefined;
  const stream = batches(data, {
    batchSize: options.batchSize ?? 256,
    limit: options.limit,
    skipBadItems: options.skipBadItems,
    onSkip: options.onSkip,
  });
  // The next batch is read while the model runs on this one.
  let first = options.checkNormalisation !== false;
  for await (const batch of prefetch(stream)) {
    if (options.signal?.aborted) throw new VbpError('ABORTED', 'evaluation was cancelled');
    if (first) checkAgainstCard(model, data, batch.input);
    first = false;
    const output = expectTensor(await model.forward(batch.input));
    if (output.shape.length !== 2 || output.shape[0] !== batch.labels.length) {
      throw new VbpError(
        'FORWARD',
        `expected class scores [${batch.labels.length}, classes], the model returned [${output.shape}]`,
      );
    }
    classes = output.shape[1];
    const scores = output.data as Float32Array;
    if (options.keepLogits) {
      logits ??= new Float32Array(total * classes);
      logits.set(scores, items * classes);
    }
    for (let i = 0; i < batch.labels.length; i++) {
      const row = scores.subarray(i * classes, (i + 1) * classes);
      let best = 0;
      for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
      predictions[items + i] = best;
      const label = batch.labels[i];
      if (label < 0) continue;
      if (label >= classes) {
        throw new VbpError(
          'DATA',
          `item ${batch.indices[i]} of ${data.description} has label ${label}, but the model scores ${classes} classes`,
        );
      }
      labelled++;
      if (best === label) correct1++;
      // Rank of the true class: top-5 when fewer than 5 classes score higher.
      let higher = 0;
      for (let c = 0; c < classes; c++) if (row[c] > row[label]) higher++;
      if (higher < 5) correct5++;
    }
    items += batch.labels.length;
    options.onProgress?.({ items, total, elapsedMs: performance.now() - started });
  }
  const elapsedMs = performance.now() - started;
  if (items > 0 && labelled === 0)
    throw new VbpError('DATA', `${data.description}: no item has a label, so there is no accuracy to measure`);
  const evaluation: Evaluation = {
    items,
    top1: labelled ? correct1 / labelled : 0,
    top5: labelled ? correct5 / labelled : 0,
    correct1,
    correct5,
    classes,
    elapsedMs,
    itemsPerSecond: items / (elapsedMs / 1000),
    predictions: items === total ? predictions : predictions.slice(0, items),
    logits: logits && items !== total ? logits.slice(0, items * classes) : logits,
  };
  return { evaluation, labelled };
}

/**
 * Every rank's counts summed and its predictions (and logits) put back at their items' places: rank r's k-th item
 * is item r + k * W of the whole. The time is the slowest rank's.
 */
async function mergeAcrossRanks(local: LocalEvaluation, total: number, world: number): Promise<Evaluation> {
  const e = local.evaluation;
  const head = Float64Array.of(e.items, local.labelled, e.correct1, e.correct5, e.classes, e.elapsedMs);
  const logits = e.logits ?? new Float32Array(0);
  const bytes = new Uint8Array(head.byteLength + e.predictions.byteLength + logits.byteLength);
  bytes.set(new Uint8Array(head.buffer), 0);
  bytes.set(new Uint8Array(e.predictions.buffer, e.predictions.byteOffset, e.predictions.byteLength), head.byteLength);
  bytes.set(
    new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength),
    head.byteLength + e.predictions.byteLength,
  );
  const parts = (await allgatherBytes(bytes)).map((part) => {
    const copy = part.slice(); // aligned views below
    const [items, labelled, correct1, correct5, classes, elapsedMs] = new Float64Array(copy.buffer, 0, 6);
    const predictions = new Int32Array(copy.buffer, 48, items);
    const rows = (copy.byteLength - 48 - items * 4) / 4;
    return {
      items,
      labelled,
      correct1,
      correct5,
      classes,
      elapsedMs,
      predictions,
      logits: new Float32Array(copy.buffer, 48 + items * 4, rows),
    };
  });
  const sum = (key: 'items' | 'labelled' | 'correct1' | 'correct5') => parts.reduce((n, p) => n + p[key], 0);
  const items = sum('items');
  const labelled = sum('labelled');
  const classes = Math.max(...parts.map((p) => p.classes));
  const elapsedMs = Math.max(...parts.map((p) => p.elapsedMs));
  const complete = items === total;
  const predictions = new Int32Array(items);
  const keep = e.logits !== undefined;
  const allLogits = keep ? new Float32Array(items * classes) : undefined;
  let next = 0;
  parts.forEach((p, rank) => {
    for (let k = 0; k < p.items; k++) {
      const at = complete ? rank + k * world : next++;
      predictions[at] = p.predictions[k];
      allLogits?.set(p.logits.subarray(k * classes, (k + 1) * classes), at * classes);
    }
  });
  return {
    items,
    top1: labelled ? sum('correct1') / labelled : 0,
    top5: labelled ? sum('correct5') / labelled : 0,
    correct1: sum('correct1'),
    correct5: sum('correct5'),
    classes,
    elapsedMs,
    itemsPerSecond: items / (elapsedMs / 1000),
    predictions,
    ...(allLogits ? { logits: allLogits } : {}),
  };
}

/** Share of the normalised range a batch may exceed it by (rounding, resampling overshoot). */
const RANGE_SLACK = 0.05;

/**
 * The first batch against the normalisation the model card states: properly normalised pixels lie in
 * [(0 - mean) / std, (1 - mean) / std] per channel and reach below 0 when the mean is above 0; data left in
 * [0, 1] or outside that range was not normalised the way the model was trained.
 */
function checkAgainstCard(model: Model, data: Dataset, input: { data: Float32Array; shape: number[] }): void {
  const { mean, std } = model.card ?? {};
  if (
    !Array.isArray(mean) ||
    !Array.isArray(std) ||
    mean.length === 0 ||
    mean.length !== std.length ||
    input.shape.length < 2
  )
    return;
  const channels = input.shape.length >= 4 ? input.shape[1] : 1;
  if (mean.length !== 1 && mean.length !== channels) return;
  const per = mean.length === 1 ? input.data.length : input.data.length / input.shape[0] / channels;
  const planes = mean.length === 1 ? 1 : channels;
  const min = new Float64Array(planes).fill(Infinity);
  const max = new Float64Array(planes).fill(-Infinity);
  const items = mean.length === 1 ? 1 : input.shape[0];
  for (let item = 0; item < items; item++) {
    for (let c = 0; c < planes; c++) {
      const start = (item * planes + c) * per;
      for (let i = start; i < start + per; i++) {
        const v = input.data[i];
        if (v < min[c]) min[c] = v;
        if (v > max[c]) max[c] = v;
      }
    }
  }
  const lo = mean.map((m, c) => (0 - m) / std[c]);
  const hi = mean.map((m, c) => (1 - m) / std[c]);
  const f = (x: number): string => String(Number(x.toPrecision(3)));
  const seen = Array.from(min, (m, c) => `[${f(m)}, ${f(max[c])}]`).join(', ');
  const expected = lo.map((l, c) => `[${f(l)}, ${f(hi[c])}]`).join(', ');
  const card = `the model card's normalisation (mean [${mean}], std [${std}])`;
  const fix =
    "give the data set that normalisation (e.g. IdxDataset.split(dir, split, { normalise: { mean, std } }) with the card's mean and std), or pass checkNormalisation: false if the data is prepared that way on purpose";
  const outside = lo.some((l, c) => {
    const slack = RANGE_SLACK * (hi[c] - l);
    return min[c] < l - slack || max[c] > hi[c] + slack;
  });
  if (outside) {
    throw new VbpError(
      'DATA',
      `evaluate(): the first batch of ${data.description} holds values ${seen} per channel, outside ${expected}, the range ${card} gives pixels in [0, 1] (pixels in 0..255? normalised twice?): ${fix}`,
    );
  }
  const unnormalised =
    lo.some((l) => l < -0.1) &&
    Array.from(min).every((m) => m >= -RANGE_SLACK) &&
    Array.from(max).every((m) => m <= 1 + RANGE_SLACK);
  if (unnormalised) {
    throw new VbpError(
      'DATA',
      `evaluate(): the first batch of ${data.description} holds values ${seen} per channel, as pixels in [0, 1] before normalisation, but ${card} maps them to ${expected}: ${fix}`,
    );
  }
}

/** How far a pruned model's outputs are from the original's: ||y' - y|| / ||y|| and top-1 agreement. */
export function fidelity(reference: Evaluation, candidate: Evaluation): { relativeError: number; agreement: number } {
  if (!reference.logits || !candidate.logits || reference.logits.length !== candidate.logits.length) {
    throw new VbpError('INVALID_ARGUMENT', 'fidelity() needs two evaluations of the same data made with keepLogits');
  }
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < reference.logits.length; i++) {
    const d = candidate.logits[i] - reference.logits[i];
    diff += d * d;
    norm += reference.logits[i] * reference.logits[i];
  }
  let same = 0;
  for (let i = 0; i < reference.items; i++) if (reference.predictions[i] === candidate.predictions[i]) same++;
  return { relativeError: Math.sqrt(diff / norm), agreement: same / reference.items };
}
