/**
 * The whole VBP job in Node, timed step by step, in its own process (a fair match for bench/python/job.py):
 * load, calibrate, plan, prune, save.
 *
 * usage: node dist/bench/job.js MODEL.pt OUT.pt --batches N --batch-size B --ratio R --threads T -> one JSON line
 */
import { keepLargeAllocations, loadModel, gatherStats, plan, prune, setNumThreads } from '../lib';
import { randomBatches, flag } from './util';

async function main(): Promise<void> {
  const [model, out] = process.argv.slice(2);
  const threads = Number(flag('--threads', '1'));
  keepLargeAllocations(64 * 2 ** 20);
  setNumThreads(threads);
  const batches = randomBatches(Number(flag('--batches', '4')), Number(flag('--batch-size', '8')), [3, 224, 224]);
  const seconds: Record<string, number> = {};
  const start = performance.now();
  let mark = start;
  const lap = (name: string): void => {
    const now = performance.now();
    seconds[name] = (now - mark) / 1000;
    mark = now;
  };
  const m = await loadModel(model);
  lap('load');
  const stats = await gatherStats(m, batches);
  lap('calibrate');
  const p = plan(stats, { ratio: Number(flag('--ratio', '0.5')) });
  lap('plan');
  const { model: pruned } = await prune(m, p, { skipMacs: true });
  lap('prune');
  await pruned.save(out);
  lap('save');
  seconds.total = (performance.now() - start) / 1000;
  process.stdout.write(JSON.stringify({ seconds, pruned: p.totals.pruned }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error.code ?? ''} ${error.message}\n`);
  process.exit(1);
});
