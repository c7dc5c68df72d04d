/**
 * One rank of the calibration pass of bench/distributed.ts (`node dist/bench/distributed-rank.js LIMIT BATCH`,
 * started by `vbp launch` or alone): gatherStats() of the bundled model over the first LIMIT items of a seeded
 * shuffle of the Fashion-MNIST training images, this rank's part (items r, r + W, ...), in batches of BATCH, merged
 * across ranks. Timed like bench/python/ddp_fmnist.py: from a barrier before the first batch to one after the merge.
 * Rank 0 prints one JSON line.
 */
import {
  DEBIAN_FASHION_MNIST,
  IdxDataset,
  batches,
  destroyDistributed,
  gatherStats,
  initDistributed,
  loadModel,
  setNumThreads,
} from '../lib';
import { barrier, distributedFromEnv } from '../lib/distributed/group';
import { BUNDLED_MODEL } from '../lib/demo/run';

async function main(): Promise<void> {
  const [limit, batchSize] = process.argv.slice(2).map(Number);
  setNumThreads(1);
  const group = distributedFromEnv() ? await initDistributed() : null;
  const model = await loadModel(BUNDLED_MODEL);
  const { mean, std } = model.card as { mean: number[]; std: number[] };
  const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', { normalise: { mean, std } });
  const data = batches(train, {
    batchSize,
    shuffle: true,
    seed: 0,
    limit,
    ...(group ? { shard: { rank: group.rank, worldSize: group.worldSize } } : {}),
  });
  if (group) await barrier();
  const started = performance.now();
  const stats = await gatherStats(model, data);
  if (group) await barrier();
  const seconds = (performance.now() - started) / 1000;
  if ((group?.rank ?? 0) === 0) {
    const images = stats.info.items;
    process.stdout.write(
      JSON.stringify({ images, seconds, imagesPerSecond: images / seconds, worldSize: group?.worldSize ?? 1 }) + '\n',
    );
  }
  await model.dispose();
  if (group) destroyDistributed();
}

main().catch((error) => {
  process.stderr.write(`distributed-rank failed: ${error.code ?? ''} ${error.stack ?? error.message}\n`);
  process.exit(1);
});
