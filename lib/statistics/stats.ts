/**
 * Activation statistics of MLP hidden neurons: count, mean and M2 per neuron in float64, gathered by a
 * native tap at the input of each fc2 (after the activation), every token of every image one sample
 * (gather.ts, collector.ts). Statistics merge exactly (Chan's formula, merge.ts), so calibration can be
 * sharded and combined; they are saved as safetensors (stats-file.ts).
 */
import fs from 'node:fs';
import { VbpError } from '../errors';
import { checkSignature, signatureFromNorms, sum, type ModelSignature } from '../model/mlp';
import { readFileChecked, writeAtomically, type WriteOptions } from '../util/files';
import type { LayerStats, StatsInfo } from './layer-stats';
import { mergeLayer } from './merge';
import { decodeStats, encodeStats } from './stats-file';

export type { LayerStats, StatsInfo } from './layer-stats';

export class Stats {
  readonly layers: readonly LayerStats[];
  readonly info: StatsInfo;
  /** The file the statistics were loaded from (Stats.load), if they were. */
  readonly source?: string;

  constructor(layers: LayerStats[], info: StatsInfo, source?: string) {
    this.layers = layers;
    this.info = info;
    if (source !== undefined) this.source = source;
  }

  /** @internal How messages name these statistics: "the statistics 'FILE'" when loaded from a file. */
  get described(): string {
    return this.source === undefined ? 'the statistics' : `the statistics '${this.source}'`;
  }

  /**
   * @internal Refuses statistics without covariance for `what` (e.g. "compensation 'lsq'"), saying how to gather them.
   */
  requireCovariance(what: string): void {
    if (!this.hasCovariance) {
      throw new VbpError(
        'STATS',
        `${this.described} hold no covariance, which ${what} needs: gather them with { covariance: true } (vbp stats --covariance)`,
      );
    }
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
      throw new VbpError(
        'STATS',
        `the statistics of ${l.fc1} hold no covariance: gather them with { covariance: true } (vbp stats --covariance)`,
      );
    }
    const n = l.comomentCount ?? l.count;
    return l.comoment.map((m) => (n > 0 ? m / n : 0));
  }

  /** Exact combination with statistics of the same model gathered on other data (Chan's formula). */
  merge(other: Stats): Stats {
    checkSignature(this.signature, other.signature, 'the other statistics', 'STATS', true);
    if (this.info.inputShape.join() !== other.info.inputShape.join()) {
      throw new VbpError(
        'STATS',
        `cannot merge statistics of inputs [${this.info.inputShape}] and [${other.info.inputShape}]`,
      );
    }
    if (this.hasCovariance !== other.hasCovariance) {
      throw new VbpError(
        'STATS',
        'cannot merge statistics gathered with covariance and without: gather every shard with { covariance: true }',
      );
    }
    const layers = this.layers.map((a, i) => mergeLayer(a, other.layers[i]));
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
    return encodeStats(this.layers, this.info);
  }

  /** Writes a safetensors file (atomically): per layer mean, m2 and weight norms, plus JSON metadata. */
  async save(file: string, options: WriteOptions = {}): Promise<void> {
    const bytes = this.toBuffer();
    await writeAtomically(file, (tmp) => fs.promises.writeFile(tmp, bytes), options);
  }

  static fromBuffer(bytes: Uint8Array, file = '<buffer>'): Stats {
    const { layers, info } = decodeStats(bytes, file);
    return new Stats(layers, info);
  }

  static async load(file: string): Promise<Stats> {
    const { layers, info } = decodeStats(readFileChecked(file, 'statistics file'), file);
    return new Stats(layers, info, file);
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
