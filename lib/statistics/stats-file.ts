/**
 * The statistics file: safetensors with per block `layers.N.mean`, `m2`, `fc1_row_sq`, `fc2_col_sq` (F64)
 * and, with covariance, `comoment` ([hidden, hidden]) and `comoment_mean`, with SNIP `saliency`; the rest of
 * each block and the StatsInfo are JSON in the metadata, beside the format name and version.
 */
import { VbpError } from '../errors';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../formats/safetensors';
import type { LayerStats, StatsInfo } from './layer-stats';

const FORMAT = 'torch-vbp-stats';
const FORMAT_VERSION = '1';

export function encodeStats(layers: readonly LayerStats[], info: StatsInfo): Buffer {
  const tensors: Record<string, Float64Array | SafeTensor> = {};
  const described = layers.map((l, i) => {
    tensors[`layers.${i}.mean`] = l.mean;
    tensors[`layers.${i}.m2`] = l.m2;
    tensors[`layers.${i}.fc1_row_sq`] = l.fc1RowSq;
    tensors[`layers.${i}.fc2_col_sq`] = l.fc2ColSq;
    if (l.comoment) {
      tensors[`layers.${i}.comoment`] = { dtype: 'F64', shape: [l.hidden, l.hidden], data: l.comoment };
      tensors[`layers.${i}.comoment_mean`] = l.comomentMean ?? l.mean;
    }
    if (l.saliency) tensors[`layers.${i}.saliency`] = l.saliency;
    const { mean, m2, fc1RowSq, fc2ColSq, comoment, comomentMean, saliency, ...rest } = l;
    return l.comoment ? { ...rest, comomentCount: l.comomentCount ?? l.count } : rest;
  });
  return encodeSafetensors(tensors, {
    format: FORMAT,
    version: FORMAT_VERSION,
    info: JSON.stringify(info),
    layers: JSON.stringify(described),
  });
}

/** The blocks and info of a statistics file's bytes; STATS naming `file` and what is wrong. */
export function decodeStats(bytes: Uint8Array, file: string): { layers: LayerStats[]; info: StatsInfo } {
  const { metadata, tensors } = decodeSafetensors(bytes, file, 'STATS', 'statistics file');
  const fail = (why: string): never => {
    throw new VbpError('STATS', `'${file}' is not a valid statistics file: ${why}`);
  };
  if (metadata.format !== FORMAT) fail(`format is '${metadata.format ?? 'missing'}', expected '${FORMAT}'`);
  if (metadata.version !== FORMAT_VERSION)
    fail(`version ${metadata.version} is not supported (expected ${FORMAT_VERSION})`);
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
      if (t.data.length !== l.hidden)
        return fail(`layers.${i}.${name} has ${t.data.length} values for ${l.hidden} neurons`);
      return t.data;
    };
    if (typeof l.fc1 !== 'string' || typeof l.fc2 !== 'string' || !Number.isInteger(l.hidden) || l.hidden <= 0) {
      fail(`layer ${i} is malformed`);
    }
    if (!Number.isFinite(l.count) || l.count < 0 || !Number.isFinite(l.items) || l.items < 0)
      fail(`layer ${i} has a bad count`);
    const layer: LayerStats = {
      ...l,
      mean: get('mean'),
      m2: get('m2'),
      fc1RowSq: get('fc1_row_sq'),
      fc2ColSq: get('fc2_col_sq'),
    };
    if (tensors[`layers.${i}.saliency`]) layer.saliency = get('saliency');
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
  return { layers, info };
}
