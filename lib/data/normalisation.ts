/**
 * Per-channel normalisation, (x - mean[c]) / std[c] after scaling pixels to [0, 1], as torchvision's
 * Normalize applies it. Checked against the number of channels before any work.
 */
import { VbpError } from '../errors';

export interface Normalisation {
  /** One value per channel, or one value for all channels. */
  mean: number[];
  std: number[];
}

/** Throws INVALID_ARGUMENT unless `n` fits items with `channels` channels. Returns per-channel arrays. */
export function checkNormalisation(
  n: Normalisation,
  channels: number,
  source = 'normalisation',
): { mean: Float64Array; std: Float64Array } {
  const fail = (why: string): never => {
    throw new VbpError('INVALID_ARGUMENT', `${source}: ${why}`);
  };
  const fits = (values: number[]): boolean =>
    Array.isArray(values) && (values.length === 1 || values.length === channels);
  const wanted = channels === 1 ? 'give one value' : `give one value per channel (${channels}) or one for all`;
  const items = channels === 1 ? 'the items have 1 channel' : `the items have ${channels} channels`;
  if (!fits(n.mean)) fail(`mean has ${n.mean?.length ?? 0} values but ${items}: ${wanted}`);
  if (!fits(n.std)) fail(`std has ${n.std?.length ?? 0} values but ${items}: ${wanted}`);
  if (!n.mean.every(Number.isFinite)) fail(`mean must be finite numbers, got [${n.mean}]`);
  if (!n.std.every((s) => Number.isFinite(s) && s > 0)) fail(`std must be positive numbers, got [${n.std}]`);
  const expand = (values: number[]): Float64Array =>
    Float64Array.from({ length: channels }, (_, c) => values[values.length === 1 ? 0 : c]);
  return { mean: expand(n.mean), std: expand(n.std) };
}

/**
 * Writes `source` (channel-major items of `channels` planes) into `target` as (source * scale - mean) / std;
 * without normalisation, as source * scale.
 */
export function normaliseInto(
  target: Float32Array,
  source: ArrayLike<number>,
  channels: number,
  scale: number,
  normalisation: { mean: Float64Array; std: Float64Array } | undefined,
): void {
  const plane = target.length / channels;
  for (let c = 0; c < channels; c++) {
    const mean = normalisation ? normalisation.mean[c] : 0;
    const std = normalisation ? normalisation.std[c] : 1;
    for (let i = c * plane, end = (c + 1) * plane; i < end; i++) target[i] = (Number(source[i]) * scale - mean) / std;
  }
}
