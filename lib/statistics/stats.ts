/**
 * Activation statistics of MLP hidden neurons: count, mean and M2 per neuron in float64, gathered by a
 * native tap at the input of each fc2 (after the activation), every token of every image one sample.
 * Statistics merge exactly (Chan's formula), so calibration can be sharded and combined.
 */
import fs from 'node:fs';
import { VbpError, asVbpError } from '../errors';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../formats/safetensors';
import type { NativeStatsSession } from '../native/addon';
import type { Tensor } from '../tensor';
import { readFileChecked, writeAtomically, type WriteOptions } from '../util/files';
import { checkOptionKeys } from '../util/options';
import { paramsPerNeuron, totalParams } from '../model/accounting';
import { checkSignature, signatureFromNorms, sum, type MlpBlock, type MlpSpec, type ModelSignature } from '../model/mlp';
import { prefetch } from '../data/prefetch';
import { checkDevices, gatherOnReplicas } from './replicas';
import { macsOf, mlpsOf, neuronNormsOf, parametersOf, type Model, type ModelLease } from '../model/model';

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

export interface GatherProgress {
  batches: number;
  items: number;
  elapsedMs: number;
}

export type CalibrationBatch = Tensor | { input: Tensor };

export interface CovarianceOptions {
  /** Also gather each block's covariance matrix (for least-squares compensation). */
  covariance?: boolean;
  /**
   * Element type of the per-batch product of centred activations (the running sums are float64 either way):
   * 'float64' (default) or 'float32', faster when every token is used, measured at about 2e-7 of the largest
   * entry off.
   */
  covarianceProduct?: 'float64' | 'float32';
  /** Refuse (STATS, before any batch) when the covariance matrices would need more bytes than this (default 2 GiB). */
  maxCovarianceBytes?: number;
  /**
   * Share of the samples (tokens) the covariance uses, in (0, 1], picked by a hash of each sample's position
   * (deterministic): the covariance products cost that share of their time. 'auto' (default): every sample
   * for blocks of up to 1,024 neurons, a quarter above (DeiT-B: 1.3x a plain forward instead of 2.3x; on the
   * bundled model a quarter changed least-squares accuracy by at most 0.08 points, README). A resumed run
   * samples other tokens than an uninterrupted one would: the same covariance statistically, not bit for bit.
   */
  covarianceSampling?: number | 'auto';
}

/** The share of samples 'auto' gives the covariance of blocks this wide. */
export function autoCovarianceSampling(widestBlock: number): number {
  return widestBlock <= 1024 ? 1 : 0.25;
}

export const DEFAULT_MAX_COVARIANCE_BYTES = 2 * 2 ** 30;

export interface GatherOptions extends CovarianceOptions {
  /** Which blocks to watch (default: every block found by structure). */
  mlps?: MlpSpec[];
  /** Stop after this many batches (counting those of `resume`). */
  maxBatches?: number;
  onProgress?: (progress: GatherProgress) => void;
  /** Cancels between batches; the error's `partial` holds what was gathered so far. */
  signal?: AbortSignal;
  /**
   * Continue an interrupted run: pass the `partial` statistics of its CalibrationError and the same batch
   * sequence. The batches the partial statistics hold are skipped (without reading them, for batches()).
   */
  resume?: Stats;
  /**
   * Calibrate on several devices at once, e.g. ['cuda:0', 'cuda:1']: one replica of the model per device
   * (copies on the model's own device, or loaded from its file on another), each batch to whichever replica
   * is free, the statistics merged exactly at the end. ['cpu', 'cpu'] runs two replicas on the CPU.
   */
  devices?: string[];
}

const COVARIANCE_OPTIONS = ['covariance', 'covarianceProduct', 'maxCovarianceBytes', 'covarianceSampling'];
const GATHER_OPTIONS = ['mlps', 'maxBatches', 'onProgress', 'signal', 'resume', 'devices', ...COVARIANCE_OPTIONS];

/** A failed or cancelled calibration; `partial` keeps every batch that completed before it. */
export class CalibrationError extends VbpError {
  readonly partial?: Stats;

  constructor(error: VbpError, partial: Stats | undefined) {
    super(error.code, error.message, { cause: error.cause ?? error, detail: error.detail });
    this.name = 'CalibrationError';
    this.partial = partial;
  }
}

const FORMAT = 'torch-vbp-stats';
const FORMAT_VERSION = '1';

export class Stats {
  readonly layers: readonly LayerStats[];
  readonly info: StatsInfo;

  constructor(layers: LayerStats[], info: StatsInfo) {
    this.layers = layers;
    this.info = info;
  }

  get signature(): ModelSignature {
    return signatureFromNorms(this.layers, this.layers);
  }

  /** Population variance per neuron (m2 / count), the expected squared error of replacing h_j by its mean. */
  variance(layer: number): Float64Array {
    const l = this.layers[layer];
    return l.m2.map((m2) => (l.count > 0 ? m2 / l.count : 0));
  }

  /** Tokens per calibration item at this layer (e.g. 197 for DeiT at 224 px). */
  tokensPerItem(layer: number): number {
    const l = this.layers[layer];
    return l.items > 0 ? l.count / l.items : 0;
  }

  get totalNeurons(): number {
    return this.layers.reduce((n, l) => n + l.hidden, 0);
  }

  /** Whether every block carries its covariance (gathered with `covariance: true`). */
  get hasCovariance(): boolean {
    return this.layers.every((l) => l.comoment !== undefined);
  }

  /** Bytes the covariance matrices take (0 without covariance). */
  get covarianceBytes(): number {
    return this.layers.reduce((n, l) => n + (l.comoment?.byteLength ?? 0), 0);
  }

  /** The population covariance of a block's neurons, row-major [hidden * hidden]; STATS when it was not gathered. */
  covariance(layer: number): Float64Array {
    const l = this.layers[layer];
    if (!l.comoment) {
      throw new VbpError('STATS', `the statistics of ${l.fc1} hold no covariance: gather them with { covariance: true } (vbp stats --covariance)`);
    }
    const n = l.comomentCount ?? l.count;
    return l.comoment.map((m) => (n > 0 ? m / n : 0));
  }

  /** Exact combination with statistics of the same model gathered on other data (Chan's formula). */
  merge(other: Stats): Stats {
    checkSignature(this.signature, other.signature, 'the other statistics', 'STATS', true);
    if (this.info.inputShape.join() !== other.info.inputShape.join()) {
      throw new VbpError('STATS', `cannot merge statistics of inputs [${this.info.inputShape}] and [${other.info.inputShape}]`);
    }
    if (this.hasCovariance !== other.hasCovariance) {
      throw new VbpError('STATS', 'cannot merge statistics gathered with covariance and without: gather every shard with { covariance: true }');
    }
    const layers = this.layers.map((a, i) => {
      const b = other.layers[i];
      if (a.count === 0) return { ...b, items: a.items + b.items, nonFinite: a.nonFinite + b.nonFinite };
      if (b.count === 0) return { ...a, items: a.items + b.items, nonFinite: a.nonFinite + b.nonFinite };
      const n = a.count + b.count;
      const weight = (a.count * b.count) / n;
      const delta = b.mean.map((m, j) => m - a.mean[j]);  // Chan's formula per neuron
      const mean = a.mean.map((m, j) => m + (delta[j] * b.count) / n);
      const m2 = a.m2.map((m, j) => m + b.m2[j] + delta[j] * delta[j] * weight);
      const merged: LayerStats = { ...a, count: n, items: a.items + b.items, nonFinite: a.nonFinite + b.nonFinite, mean, m2 };
      if (a.comoment && b.comoment) Object.assign(merged, mergeCovariances(a, b));
      return merged;
    });
    return new Stats(layers, {
      ...this.info,
      modelMacs: this.info.modelMacs || other.info.modelMacs,
      modelParams: this.info.modelParams || other.info.modelParams,
      batches: this.info.batches + other.info.batches,
      items: this.info.items + other.info.items,
    });
  }

  /** The layers that saw NaN or Inf values. */
  nonFiniteLayers(): LayerStats[] {
    return this.layers.filter((l) => l.nonFinite > 0);
  }

  toBuffer(): Buffer {
    const tensors: Record<string, Float64Array | SafeTensor> = {};
    const layers = this.layers.map((l, i) => {
      tensors[`layers.${i}.mean`] = l.mean;
      tensors[`layers.${i}.m2`] = l.m2;
      tensors[`layers.${i}.fc1_row_sq`] = l.fc1RowSq;
      tensors[`layers.${i}.fc2_col_sq`] = l.fc2ColSq;
      if (l.comoment) {
        tensors[`layers.${i}.comoment`] = { dtype: 'F64', shape: [l.hidden, l.hidden], data: l.comoment };
        tensors[`layers.${i}.comoment_mean`] = l.comomentMean ?? l.mean;
      }
      const { mean, m2, fc1RowSq, fc2ColSq, comoment, comomentMean, ...rest } = l;
      return l.comoment ? { ...rest, comomentCount: l.comomentCount ?? l.count } : rest;
    });
    return encodeSafetensors(tensors, {
      format: FORMAT,
      version: FORMAT_VERSION,
      info: JSON.stringify(this.info),
      layers: JSON.stringify(layers),
    });
  }

  /** Writes a safetensors file (atomically): per layer mean, m2 and weight norms, plus JSON metadata. */
  async save(file: string, options: WriteOptions = {}): Promise<void> {
    const bytes = this.toBuffer();
    await writeAtomically(file, (tmp) => fs.promises.writeFile(tmp, bytes), options);
  }

  static fromBuffer(bytes: Uint8Array, file = '<buffer>'): Stats {
    const { metadata, tensors } = decodeSafetensors(bytes, file, 'STATS', 'statistics file');
    const fail = (why: string): never => {
      throw new VbpError('STATS', `'${file}' is not a valid statistics file: ${why}`);
    };
    if (metadata.format !== FORMAT) fail(`format is '${metadata.format ?? 'missing'}', expected '${FORMAT}'`);
    if (metadata.version !== FORMAT_VERSION) fail(`version ${metadata.version} is not supported (expected ${FORMAT_VERSION})`);
    let info: StatsInfo;
    let layerInfo: Array<Omit<LayerStats, 'mean' | 'm2' | 'fc1RowSq' | 'fc2ColSq' | 'comoment' | 'comomentMean'>>;
    try {
      info = JSON.parse(metadata.info) as StatsInfo;
      layerInfo = JSON.parse(metadata.layers);
    } catch {
      return fail('metadata is not JSON');
    }
    if (!Array.isArray(layerInfo) || layerInfo.length === 0) fail('it describes no layers');
    if (!info || !Array.isArray(info.inputShape)) fail('info.inputShape is missing');
    const layers = layerInfo.map((l, i) => {
      const get = (name: string): Float64Array => {
        const t = tensors[`layers.${i}.${name}`];
        if (!t || !(t.data instanceof Float64Array)) return fail(`layers.${i}.${name} is missing or not F64`);
        if (t.data.length !== l.hidden) return fail(`layers.${i}.${name} has ${t.data.length} values for ${l.hidden} neurons`);
        return t.data;
      };
      if (typeof l.fc1 !== 'string' || typeof l.fc2 !== 'string' || !Number.isInteger(l.hidden) || l.hidden <= 0) {
        fail(`layer ${i} is malformed`);
      }
      if (!Number.isFinite(l.count) || l.count < 0 || !Number.isFinite(l.items) || l.items < 0) fail(`layer ${i} has a bad count`);
      const layer: LayerStats = { ...l, mean: get('mean'), m2: get('m2'), fc1RowSq: get('fc1_row_sq'), fc2ColSq: get('fc2_col_sq') };
      const comoment = tensors[`layers.${i}.comoment`];
      if (comoment) {
        if (!(comoment.data instanceof Float64Array) || comoment.data.length !== l.hidden * l.hidden) {
          fail(`layers.${i}.comoment must be F64 [${l.hidden}, ${l.hidden}]`);
        }
        layer.comoment = comoment.data as Float64Array;
        layer.comomentMean = get('comoment_mean');
        if (!Number.isInteger(l.comomentCount) || l.comomentCount! < 0) fail(`layer ${i} has a bad comomentCount`);
      }
      return layer;
    });
    return new Stats(layers, info);
  }

  static async load(file: string): Promise<Stats> {
    return Stats.fromBuffer(readFileChecked(file, 'statistics file'), file);
  }

  /** Plain numbers for reports and --json output (no per-neuron arrays). */
  summary(): {
    info: StatsInfo;
    covarianceBytes: number;
    layers: Array<{ fc1: string; fc2: string; hidden: number; count: number; nonFinite: number; meanVariance: number }>;
  } {
    return {
      info: this.info,
      covarianceBytes: this.covarianceBytes,
      layers: this.layers.map((l, i) => ({
        fc1: l.fc1,
        fc2: l.fc2,
        hidden: l.hidden,
        count: l.count,
        nonFinite: l.nonFinite,
        meanVariance: sum(this.variance(i)) / l.hidden,
      })),
    };
  }
}

/** Chan's formula for co-moment matrices, each of its own samples: A + B + delta delta^T * na nb / n. */
function mergeCovariances(a: LayerStats, b: LayerStats): Pick<LayerStats, 'comoment' | 'comomentCount' | 'comomentMean'> {
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
    for (let c = 0, at = r * hidden; c < hidden; c++, at++) merged[at] = a.comoment![at] + b.comoment![at] + scaled * delta[c];
  }
  return { comoment: merged, comomentCount: n, comomentMean: meanA.map((m, j) => m + (delta[j] * nb) / n) };
}

function batchInput(batch: CalibrationBatch): Tensor {
  const input = batch !== null && typeof batch === 'object' && 'input' in batch ? batch.input : batch;
  if (!input || typeof input !== 'object' || !Array.isArray(input.shape) || input.shape.length < 1) {
    throw new VbpError('INPUT', 'a calibration batch must be a tensor { data, shape } or { input: tensor }');
  }
  return input;
}

export interface CollectorOptions extends CovarianceOptions {
  /** Which blocks to watch (default: every block found by structure). */
  mlps?: MlpSpec[];
  /** Continue from earlier (partial) statistics of the same model. */
  resume?: Stats;
}

/**
 * Statistics gathered batch by batch, for callers that drive calibration themselves (gatherStats() is the
 * usual way). Holds an instrumented copy of the model until finish() or dispose(); its batches are queued
 * on the model like any other call.
 */
export class StatsCollector {
  private inputShape: number[] | undefined;
  private batchCount = 0;
  private itemCount = 0;
  private disposed = false;
  /** The model's MACs per item, counted during this collector's first batch. */
  private macsPerItem: number | undefined;

  private constructor(
    private readonly lease: ModelLease,
    private readonly blocks: MlpBlock[],
    private readonly norms: Array<{ fc1RowSq: Float64Array; fc2ColSq: Float64Array }>,
    private readonly paramsPerNeuron: number[],
    private readonly session: NativeStatsSession,
    private readonly resume: Stats | undefined,
  ) {
    this.inputShape = resume?.info.inputShape;
  }

  /** Holds `model` open (a dispose() waits) until finish() or dispose(). */
  static async create(model: Model, options: CollectorOptions = {}): Promise<StatsCollector> {
    checkOptionKeys(options, ['mlps', 'resume', ...COVARIANCE_OPTIONS], 'StatsCollector.create()');
    if (options.resume !== undefined && !(options.resume instanceof Stats)) throw new VbpError('INVALID_ARGUMENT', 'resume must be a Stats object');
    const covariance = checkCovarianceOptions(options);
    const lease = model.lease();
    try {
      const blocks = await mlpsOf(lease, options.mlps);
      const specs = blocks.map(({ fc1, fc2 }) => ({ fc1, fc2 }));
      if (covariance.covariance) checkCovarianceMemory(blocks, covariance.maxCovarianceBytes);
      const norms = await neuronNormsOf(lease, specs);
      const parameters = parametersOf(lease);
      if (options.resume) {
        checkSignature(options.resume.signature, signatureFromNorms(blocks, norms), 'the statistics to resume', 'STATS', true);
        if (options.resume.hasCovariance !== covariance.covariance) {
          throw new VbpError('STATS', `the statistics to resume were gathered ${options.resume.hasCovariance ? 'with' : 'without'} covariance; resume them the same way`);
        }
      }
      const sampling = covariance.covarianceSampling === 'auto' ? autoCovarianceSampling(Math.max(...blocks.map((b) => b.hidden))) : covariance.covarianceSampling;
      const session = await lease.enqueue((h) => h.createStatsSession(specs, { covariance: covariance.covariance, productType: covariance.covarianceProduct, sampling }));
      return new StatsCollector(lease, blocks, norms, blocks.map((b) => paramsPerNeuron(b, parameters)), session, options.resume);
    } catch (error) {
      lease.release();
      throw error;
    }
  }

  get batches(): number {
    return this.batchCount;
  }

  get items(): number {
    return this.itemCount;
  }

  /** Runs one batch through the instrumented copy; its activations join the statistics. */
  async add(batch: CalibrationBatch): Promise<void> {
    if (this.disposed) throw new VbpError('DISPOSED', 'this statistics collector has finished');
    const input = batchInput(batch);
    const shape = input.shape.slice(1);
    if (this.inputShape && this.inputShape.join() !== shape.join()) {
      throw new VbpError('INPUT_SHAPE', `calibration batch ${this.batchCount} has items of shape [${shape}], earlier ones [${this.inputShape}]`);
    }
    // The first batch also counts the model's MACs: no separate forward is needed for them.
    const macs = await this.lease.enqueue(() => this.session.run(input, this.macsPerItem === undefined));
    if (macs) this.macsPerItem = macs.total / input.shape[0];
    this.inputShape = shape;
    this.batchCount++;
    this.itemCount += input.shape[0];
  }

  /** The statistics so far (merged with the resumed ones), or undefined before the first batch. */
  async snapshot(): Promise<Stats | undefined> {
    if (!this.inputShape || this.batchCount === 0) return this.resume;
    if (this.disposed) throw new VbpError('DISPOSED', 'this statistics collector has finished');
    const layers = await this.lease.enqueue(() => this.session.snapshot());
    const stats = new Stats(
      this.blocks.map((b, i) => ({
        ...b,
        count: layers[i].count,
        // Items come from the batches' first dimension here, not from the activations' shape, which may
        // be sequence-first ([T, B, D]) or flattened ([B * T, D]).
        items: layers[i].count > 0 ? this.itemCount : 0,
        nonFinite: layers[i].nonFinite,
        mean: layers[i].mean,
        m2: layers[i].m2,
        fc1RowSq: this.norms[i].fc1RowSq,
        fc2ColSq: this.norms[i].fc2ColSq,
        paramsPerNeuron: this.paramsPerNeuron[i],
        ...(layers[i].comoment ? { comoment: layers[i].comoment, comomentCount: layers[i].comomentCount, comomentMean: layers[i].comomentMean } : {}),
      })),
      { inputShape: this.inputShape, batches: this.batchCount, items: this.itemCount, modelMacs: 0, modelParams: 0 },
    );
    return this.resume ? this.resume.merge(stats) : stats;
  }

  /**
   * The final statistics, with the model's MACs and parameters for one item; releases the copy. When it
   * fails, the CalibrationError's `partial` holds the statistics of every batch.
   */
  async finish(): Promise<Stats> {
    let stats: Stats | undefined;
    try {
      stats = await this.snapshot();
      if (!stats || !this.inputShape) throw new VbpError('STATS', 'no calibration batch was given');
      const modelMacs = this.macsPerItem ?? (this.resume?.info.modelMacs || (await macsOf(this.lease, [1, ...this.inputShape])).total);
      return new Stats([...stats.layers], { ...stats.info, modelMacs, modelParams: totalParams(parametersOf(this.lease)) });
    } catch (error) {
      throw new CalibrationError(asVbpError(error), stats);
    } finally {
      this.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.session.dispose();
    this.lease.release();
  }
}

function checkCovarianceOptions(options: CovarianceOptions): Required<CovarianceOptions> {
  const product = options.covarianceProduct ?? 'float64';
  if (product !== 'float64' && product !== 'float32') throw new VbpError('INVALID_ARGUMENT', `covarianceProduct must be 'float64' or 'float32', got '${String(product)}'`);
  const limit = options.maxCovarianceBytes ?? DEFAULT_MAX_COVARIANCE_BYTES;
  if (!(typeof limit === 'number' && limit > 0)) throw new VbpError('INVALID_ARGUMENT', `maxCovarianceBytes must be a positive number, got ${String(limit)}`);
  const sampling = options.covarianceSampling ?? 'auto';
  if (sampling !== 'auto' && !(typeof sampling === 'number' && sampling > 0 && sampling <= 1)) {
    throw new VbpError('INVALID_ARGUMENT', `covarianceSampling must be 'auto' or in (0, 1], got ${String(sampling)}`);
  }
  return { covariance: Boolean(options.covariance), covarianceProduct: product, maxCovarianceBytes: limit, covarianceSampling: sampling };
}

/** Refuses, before any batch, covariance matrices that would take more than `limit` bytes. */
function checkCovarianceMemory(blocks: MlpBlock[], limit: number): void {
  const bytes = blocks.reduce((n, b) => n + b.hidden * b.hidden * 8, 0);
  if (bytes > limit) {
    throw new VbpError(
      'STATS',
      `the covariance of ${blocks.length} blocks (${blocks.map((b) => b.hidden).join(', ')} neurons) needs ${(bytes / 2 ** 20).toFixed(0)} MiB, ` +
        `more than maxCovarianceBytes (${(limit / 2 ** 20).toFixed(0)} MiB): raise the limit, or gather the blocks in groups with the mlps option`,
    );
  }
}

function isIterable(value: unknown): value is AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch> {
  return value !== null && typeof value === 'object' && (Symbol.asyncIterator in value || Symbol.iterator in value);
}

/** The batch sequence after its first `count` batches: batches() skips them without reading them. */
function skipBatches(source: AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>, count: number): AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch> {
  if (count === 0) return source;
  const skippable = source as { skipBatches?: (n: number) => AsyncIterable<CalibrationBatch> };
  if (typeof skippable.skipBatches === 'function') return skippable.skipBatches(count);
  return (async function* () {
    let seen = 0;
    for await (const batch of source as AsyncIterable<CalibrationBatch>) if (seen++ >= count) yield batch;
  })();
}

/**
 * Streams calibration batches through an instrumented copy of `model` (the model itself is not changed)
 * and returns per-neuron statistics of every MLP block's hidden activations.
 */
export async function gatherStats(
  model: Model,
  batches: AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>,
  options: GatherOptions = {},
): Promise<Stats> {
  checkOptionKeys(options, GATHER_OPTIONS, 'gatherStats()');
  if (!isIterable(batches)) {
    throw new VbpError('INVALID_ARGUMENT', 'gatherStats(model, batches): batches must be an iterable or async iterable of tensors or { input } batches');
  }
  if (options.maxBatches !== undefined && (!Number.isInteger(options.maxBatches) || options.maxBatches < 1)) {
    throw new VbpError('INVALID_ARGUMENT', `maxBatches must be a positive integer, got ${String(options.maxBatches)}`);
  }
  if (options.devices !== undefined) {
    checkDevices(options.devices);
    if (options.resume) throw new VbpError('INVALID_ARGUMENT', 'resume and devices cannot be combined: resume a run on the device it ran on');
    const { devices, resume: _resume, ...rest } = options;
    return gatherOnReplicas(model, devices, batches, rest);
  }
  const started = Date.now();
  const resumed = options.resume?.info.batches ?? 0;
  const collector = await StatsCollector.create(model, {
    mlps: options.mlps,
    resume: options.resume,
    covariance: options.covariance,
    covarianceProduct: options.covarianceProduct,
    maxCovarianceBytes: options.maxCovarianceBytes,
    covarianceSampling: options.covarianceSampling,
  });
  const aborted = (): VbpError => new VbpError('ABORTED', 'calibration was cancelled');
  try {
    // The next batch is read while the current one runs through the model.
    const remaining = options.maxBatches === undefined ? Infinity : Math.max(0, options.maxBatches - resumed);
    for await (const batch of prefetch(skipBatches(batches, resumed), remaining)) {
      if (options.signal?.aborted) throw aborted();
      await collector.add(batch);
      options.onProgress?.({ batches: resumed + collector.batches, items: (options.resume?.info.items ?? 0) + collector.items, elapsedMs: Date.now() - started });
    }
    if (options.signal?.aborted) throw aborted();
    return await collector.finish();
  } catch (error) {
    if (error instanceof CalibrationError) throw error;
    const partial = await collector.snapshot().catch(() => undefined);
    throw new CalibrationError(asVbpError(error), partial);
  } finally {
    collector.dispose();
  }
}
