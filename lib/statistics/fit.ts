/** Whether statistics belong to a model: the pipeline's check before it plans or prunes with them. */
import { VbpError } from '../errors';
import { checkSignature } from '../model/mlp';
import type { Model } from '../model/model';
import type { Stats } from './stats';

/** STATS, naming the statistics, when they were not gathered on `model` (other layers, widths or weights). */
export async function checkStatsFit(model: Model, stats: Stats): Promise<void> {
  const what = stats.described;
  const signature = await model
    .signature(stats.layers.map(({ fc1, fc2 }) => ({ fc1, fc2 })))
    .catch((error: VbpError) => {
      if (error.code !== 'MLP_SPEC' && error.code !== 'NO_MLP') throw error;
      throw new VbpError('STATS', `${what} belong to another model: ${error.message}`, { cause: error });
    });
  checkSignature(stats.signature, signature, what, 'STATS', true);
}
