/**
 * The native tap's side of calibration: StatsCollector (an instrumented copy of a model that statistics are
 * gathered on batch by batch), the batches it takes, and CalibrationError (a stop that keeps what completed).
 */
import { VbpError, asVbpError } from '../errors';
import { paramsPerNeuron, totalParams } from '../model/accounting';
import { checkSignature, signatureFromNorms, type MlpBlock, type MlpSpec } from '../model/mlp';
import { macsOf, mlpsOf, neuronNormsOf, parametersOf, type Model, type ModelLease } from '../model/model';
import type { NativeSaliencySession, NativeStatsSession } from '../native/addon';
import type { Tensor } from '../tensor';
import { checkOptionKeys } from '../util/options';
import {
  autoCovarianceSampling,
  checkCovarianceMemory,
  checkCovarianceOptions,
  COVARIANCE_OPTIONS,
  type CovarianceOptions,
} from './options';
import { Stats } from './stats';

export type CalibrationBatch = Tensor | { input: Tensor; labels?: Int32Array };

/** A failed or cancelled calibration; `partial` keeps every batch that completed before it. */
export class CalibrationError extends VbpError {
  readonly partial?: Stats;

  constructor(error: VbpError, partial: Stats | undefined) {
    super(error.code, error.message, { cause: error.cause ?? error, detail: error.detail });
    this.name = 'CalibrationError';
    this.partial = partial;
  }
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
  /** Also SNIP's scores (criterion 'snip'): every batch must be { input, labels }. */
  snip?: boolean;
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
    private readonly saliency: NativeSaliencySession | undefined,
  ) {
    this.inputShape = resume?.info.inputShape;
  }

  /** Holds `model` open (a dispose() waits) until finish() or dispose(). */
  static async create(model: Model, options: CollectorOptions = {}): Promise<StatsCollector> {
    checkOptionKeys(options, ['mlps', 'resume', 'snip', ...COVARIANCE_OPTIONS], 'StatsCollector.create()');
    if (options.resume !== undefined && !(options.resume instanceof Stats))
      throw new VbpError('INVALID_ARGUMENT', 'resume must be a Stats object');
    const covariance = checkCovarianceOptions(options);
    const lease = model.lease();
    try {
      const blocks = await mlpsOf(lease, options.mlps);
      const specs = blocks.map(({ fc1, fc2 }) => ({ fc1, fc2 }));
      if (covariance.covariance) checkCovarianceMemory(blocks, covariance.maxCovarianceBytes);
      const norms = await neuronNormsOf(lease, specs);
      const parameters = parametersOf(lease);
      if (options.resume) {
        checkSignature(
          options.resume.signature,
          signatureFromNorms(blocks, norms),
          'the statistics to resume',
          'STATS',
          true,
        );
        if (Boolean(options.resume.layers[0]?.saliency) !== Boolean(options.snip)) {
          throw new VbpError(
            'STATS',
            `the statistics to resume were gathered ${options.resume.layers[0]?.saliency ? 'with' : 'without'} SNIP scores; resume them the same way`,
          );
        }
        if (options.resume.hasCovariance !== covariance.covariance) {
          throw new VbpError(
            'STATS',
            `the statistics to resume were gathered ${options.resume.hasCovariance ? 'with' : 'without'} covariance; resume them the same way`,
          );
        }
      }
      const sampling =
        covariance.covarianceSampling === 'auto'
          ? autoCovarianceSampling(Math.max(...blocks.map((b) => b.hidden)))
          : covariance.covarianceSampling;
      const session = await lease.enqueue((h) =>
        h.createStatsSession(specs, {
          covariance: covariance.covariance,
          productType: covariance.covarianceProduct,
          sampling,
        }),
      );
      const saliency = options.snip ? await lease.enqueue((h) => h.createSaliencySession(specs)) : undefined;
      return new StatsCollector(
        lease,
        blocks,
        norms,
        blocks.map((b) => paramsPerNeuron(b, parameters)),
        session,
        options.resume,
        saliency,
      );
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
      throw new VbpError(
        'INPUT_SHAPE',
        `calibration batch ${this.batchCount} has items of shape [${shape}], earlier ones [${this.inputShape}]`,
      );
    }
    // The first batch also counts the model's MACs: no separate forward is needed for them.
    const labels = batch !== null && typeof batch === 'object' && 'labels' in batch ? batch.labels : undefined;
    if (this.saliency && !(labels instanceof Int32Array && labels.length === input.shape[0]))
      throw new VbpError(
        'DATA',
        `SNIP scores need labelled batches: batch ${this.batchCount} must be { input, labels } with one Int32Array label per item`,
      );
    const macs = await this.lease.enqueue(() => this.session.run(input, this.macsPerItem === undefined));
    if (macs) this.macsPerItem = macs.total / input.shape[0];
    if (this.saliency) await this.lease.enqueue(() => this.saliency!.run(input, labels!));
    this.inputShape = shape;
    this.batchCount++;
    this.itemCount += input.shape[0];
  }

  /** The statistics so far (merged with the resumed ones), or undefined before the first batch. */
  async snapshot(): Promise<Stats | undefined> {
    if (!this.inputShape || this.batchCount === 0) return this.resume;
    if (this.disposed) throw new VbpError('DISPOSED', 'this statistics collector has finished');
    const layers = await this.lease.enqueue(() => this.session.snapshot());
    const saliency = this.saliency ? await this.lease.enqueue(() => this.saliency!.scores()) : undefined;
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
        ...(layers[i].comoment
          ? {
              comoment: layers[i].comoment,
              comomentCount: layers[i].comomentCount,
              comomentMean: layers[i].comomentMean,
            }
          : {}),
        ...(saliency ? { saliency: saliency[i], saliencyBatches: this.batchCount } : {}),
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
      const modelMacs =
        this.macsPerItem ?? (this.resume?.info.modelMacs || (await macsOf(this.lease, [1, ...this.inputShape])).total);
      return new Stats([...stats.layers], {
        ...stats.info,
        modelMacs,
        modelParams: totalParams(parametersOf(this.lease)),
      });
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
    this.saliency?.dispose();
    this.lease.release();
  }
}
