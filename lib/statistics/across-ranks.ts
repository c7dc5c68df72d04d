/**
 * Statistics of a data-parallel calibration: every rank's statistics (its own part of the data) travel to every
 * rank whole (all-gather of the stats file's bytes: float64 values as they are) and are merged in rank order
 * with Chan's formula, so every rank holds the same result, equal to one pass over all the parts up to float64
 * rounding.
 */
import { allgatherBytes } from '../distributed/group';
import { Stats } from './stats';

export async function mergeAcrossRanks(local: Stats): Promise<Stats> {
  const parts = await allgatherBytes(local.toBuffer());
  let merged = Stats.fromBuffer(parts[0], 'the statistics of rank 0');
  for (let rank = 1; rank < parts.length; rank++)
    merged = merged.merge(Stats.fromBuffer(parts[rank], `the statistics of rank ${rank}`));
  return merged;
}
