/**
 * Calibration on several devices at once: one replica of the model per device (the model itself on its own
 * device, copies elsewhere), each with its own statistics; every batch goes to whichever replica is free,
 * and the statistics are merged with Chan's formula at the end (the result equals one pass over the same
 * batches up to float64 rounding, whatever replica saw which batch). `['cpu', 'cpu']` runs two replicas on
 * the CPU, which is also how the path is tested on machines without GPUs.
 */
import { VbpError, asVbpError } from '../errors';
import { prefetch } from '../data/prefetch';
import { loadModel, Model } from '../model/model';
import { CalibrationError, StatsCollector, type CalibrationBatch, type CollectorOptions } from './collector';
import type { GatherProgress } from './options';
import type { Stats } from './stats';

interface ReplicaOptions extends CollectorOptions {
  maxBatches?: number;
  onProgress?: (progress: GatherProgress) => void;
  signal?: AbortSignal;
}

/** 'cuda' is 'cuda:0', as LibTorch names the device of a model. */
function canonicalDevice(device: string): string {
  return device === 'cuda' ? 'cuda:0' : device;
}

/** The model itself for the first use of its own device, a copy for the others. */
async function replicasOf(model: Model, devices: string[]): Promise<Model[]> {
  const replicas: Model[] = [];
  let ownUsed = false;
  try {
    for (const device of devices.map(canonicalDevice)) {
      if (device === model.device && !ownUsed) {
        ownUsed = true;
        replicas.push(model);
      } else if (device === model.device) {
        replicas.push(await model.clone());
      } else if (model.source) {
        replicas.push(await loadModel(model.source, { device, card: model.card ?? false }));
      } else {
        throw new VbpError(
          'INVALID_ARGUMENT',
          `devices: a replica on ${device} is loaded from the model's file, and this model (on ${model.device}) has none`,
        );
      }
    }
  } catch (error) {
    await Promise.all(replicas.filter((r) => r !== model).map((r) => r.dispose()));
    throw error;
  }
  return replicas;
}

export function checkDevices(devices: unknown): asserts devices is string[] {
  if (!Array.isArray(devices) || devices.length === 0 || !devices.every((d) => typeof d === 'string' && d.length > 0)) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      "devices must be a non-empty array of device names, e.g. ['cuda:0', 'cuda:1'] or ['cpu', 'cpu']",
    );
  }
}

/** The statistics of every replica that saw a batch, merged. */
async function mergedStats(collectors: StatsCollector[], partial: boolean): Promise<Stats | undefined> {
  let merged: Stats | undefined;
  for (const collector of collectors) {
    if (collector.batches === 0) continue;
    const stats = partial ? await collector.snapshot() : await collector.finish();
    if (stats) merged = merged ? merged.merge(stats) : stats;
  }
  return merged;
}

export async function gatherOnReplicas(
  model: Model,
  devices: string[],
  batches: AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>,
  options: ReplicaOptions,
): Promise<Stats> {
  const started = Date.now();
  const replicas = await replicasOf(model, devices);
  const collectors: StatsCollector[] = [];
  const busy = new Map<number, Promise<number>>();
  let batchCount = 0;
  let itemCount = 0;
  try {
    const { maxBatches, onProgress, signal, ...collectorOptions } = options;
    for (const replica of replicas) collectors.push(await StatsCollector.create(replica, collectorOptions));
    const free = collectors.map((_, i) => i);
    for await (const batch of prefetch(batches, maxBatches ?? Infinity)) {
      if (signal?.aborted) throw new VbpError('ABORTED', 'calibration was cancelled');
      if (free.length === 0) {
        const done = await Promise.race(busy.values());
        busy.delete(done);
        free.push(done);
      }
      const i = free.shift()!;
      busy.set(
        i,
        collectors[i].add(batch).then(() => {
          batchCount++;
          itemCount = collectors.reduce((n, c) => n + c.items, 0);
          onProgress?.({ batches: batchCount, items: itemCount, elapsedMs: Date.now() - started });
          return i;
        }),
      );
    }
    await Promise.all(busy.values());
    if (signal?.aborted) throw new VbpError('ABORTED', 'calibration was cancelled');
    const stats = await mergedStats(collectors, false);
    if (!stats) throw new VbpError('STATS', 'no calibration batch was given');
    return stats;
  } catch (error) {
    await Promise.allSettled(busy.values());
    if (error instanceof CalibrationError) throw error;
    const partial = await mergedStats(collectors, true).catch(() => undefined);
    throw new CalibrationError(asVbpError(error), partial);
  } finally {
    for (const collector of collectors) collector.dispose();
    await Promise.all(replicas.filter((r) => r !== model).map((r) => r.dispose()));
  }
}
