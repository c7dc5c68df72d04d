/**
 * gatherStats(): streams calibration batches through an instrumented copy of a model and returns the
 * statistics of every MLP block; cancelled or failed, a CalibrationError keeps what completed, and `resume`
 * continues it exactly.
 */
import { agreeAcrossRanks, parameterSignature } from '../distributed/agreement';
import { distributedInfo } from '../distributed/group';
import { VbpError, asVbpError } from '../errors';
import { prefetch } from '../data/prefetch';
import type { MlpSpec } from '../model/mlp';
import type { Model } from '../model/model';
import { checkOptionKeys } from '../util/options';
import { CalibrationError, StatsCollector, type CalibrationBatch } from './collector';
import { COVARIANCE_OPTIONS, type CovarianceOptions, type GatherProgress } from './options';
import { mergeAcrossRanks } from './across-ranks';
import { checkDevices, gatherOnReplicas } from './replicas';
import type { Stats } from './stats';

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
  /**
   * Merge with the other ranks of the process group (initDistributed()) at the end; default: whenever this
   * process has joined one. Each rank gives its own part of the data (batches(dataset, { shard })); every rank
   * gets the statistics of all the parts, equal to one pass over them up to float64 rounding.
   */
  distributed?: boolean;
  /**
   * Also SNIP's score per neuron (the paper's ablation; plan criterion 'snip'): |w * dL/dw| summed over the
   * neuron's fc1 row, for the cross-entropy of each batch, so every batch must be { input, labels }.
   */
  snip?: boolean;
}

const GATHER_OPTIONS = [
  'mlps',
  'maxBatches',
  'onProgress',
  'signal',
  'resume',
  'devices',
  'distributed',
  'snip',
  ...COVARIANCE_OPTIONS,
];

function isIterable(value: unknown): value is AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch> {
  return value !== null && typeof value === 'object' && (Symbol.asyncIterator in value || Symbol.iterator in value);
}

/** The batch sequence after its first `count` batches: batches() skips them without reading them. */
function skipBatches(
  source: AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>,
  count: number,
): AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch> {
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
    throw new VbpError(
      'INVALID_ARGUMENT',
      'gatherStats(model, batches): batches must be an iterable or async iterable of tensors or { input } batches',
    );
  }
  if (options.maxBatches !== undefined && (!Number.isInteger(options.maxBatches) || options.maxBatches < 1)) {
    throw new VbpError('INVALID_ARGUMENT', `maxBatches must be a positive integer, got ${String(options.maxBatches)}`);
  }
  if (options.distributed !== false && distributedInfo()) {
    // Ranks that would gather different statistics stop here, before any batch, rather than merge them.
    const { signal: _signal, onProgress: _onProgress, resume, devices, distributed: _distributed, ...rest } = options;
    await agreeAcrossRanks('gatherStats()', {
      options: rest,
      model: parameterSignature(model),
      resumedItems: resume?.info.items ?? 0,
      replicas: devices?.length ?? 1,
    });
  }
  if (options.devices !== undefined) {
    checkDevices(options.devices);
    if (options.snip)
      throw new VbpError('INVALID_ARGUMENT', 'snip and devices cannot be combined: score SNIP on one device');
    if (options.resume)
      throw new VbpError(
        'INVALID_ARGUMENT',
        'resume and devices cannot be combined: resume a run on the device it ran on',
      );
    const { devices, resume: _resume, distributed, ...rest } = options;
    const local = await gatherOnReplicas(model, devices, batches, rest);
    return distributed !== false && distributedInfo() ? mergeAcrossRanks(local) : local;
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
    snip: options.snip,
  });
  const aborted = (): VbpError => new VbpError('ABORTED', 'calibration was cancelled');
  try {
    // The next batch is read while the current one runs through the model.
    const remaining = options.maxBatches === undefined ? Infinity : Math.max(0, options.maxBatches - resumed);
    for await (const batch of prefetch(skipBatches(batches, resumed), remaining)) {
      if (options.signal?.aborted) throw aborted();
      await collector.add(batch);
      options.onProgress?.({
        batches: resumed + collector.batches,
        items: (options.resume?.info.items ?? 0) + collector.items,
        elapsedMs: Date.now() - started,
      });
    }
    if (options.signal?.aborted) throw aborted();
    const local = await collector.finish();
    return options.distributed !== false && distributedInfo() ? await mergeAcrossRanks(local) : local;
  } catch (error) {
    if (error instanceof CalibrationError) throw error;
    const partial = await collector.snapshot().catch(() => undefined);
    throw new CalibrationError(asVbpError(error), partial);
  } finally {
    collector.dispose();
  }
}
