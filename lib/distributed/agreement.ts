/**
 * Before a data-parallel run's first step, every rank shows the others what decides its result (options, the
 * model's parameter signature, the data's size): ranks started with different models, options or data stop
 * here with DISTRIBUTED, on every rank, instead of training something no single run would.
 */
import { VbpError } from '../errors';
import { allgatherBytes, distributedInfo } from './group';

/** What makes two ranks' models the same model for a collective: every parameter's name and shape. */
export function parameterSignature(model: {
  parameters(): ReadonlyArray<{ name: string; shape: readonly number[] }>;
}): string[] {
  return model.parameters().map((p) => `${p.name}:${p.shape.join('x')}`);
}

/** Throws DISTRIBUTED on every rank when a rank's `facts` differ from rank 0's, naming the rank and the fact. */
export async function agreeAcrossRanks(what: string, facts: Record<string, unknown>): Promise<void> {
  const group = distributedInfo();
  if (!group || group.worldSize === 1) return;
  const mine = Buffer.from(JSON.stringify(facts));
  const all = (await allgatherBytes(mine)).map(
    (bytes) => JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>,
  );
  for (let rank = 1; rank < all.length; rank++) {
    for (const key of Object.keys({ ...all[0], ...all[rank] })) {
      const theirs = JSON.stringify(all[rank][key]);
      const first = JSON.stringify(all[0][key]);
      if (theirs !== first) {
        const shorten = (text: string | undefined): string =>
          text === undefined ? '(none)' : text.length > 120 ? `${text.slice(0, 117)}...` : text;
        throw new VbpError(
          'DISTRIBUTED',
          `${what}: rank ${rank} was started with another ${key} than rank 0 (${shorten(theirs)} against ${shorten(first)}); start every rank with the same model, options and data`,
        );
      }
    }
  }
}
