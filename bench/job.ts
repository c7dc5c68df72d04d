/**
 * The whole VBP job in Node, timed step by step, in its own process (a fair match for bench/python/job.py):
 * load, calibrate, plan, prune, save, with torch-vbp's defaults (no allocator call). Then the floor the job
 * cannot go below: one plain forward of each calibration batch on the loaded model ('forwards'), so that
 * load + forwards + save is the work it cannot avoid.
 *
 * usage: node dist/bench/job.js MODEL.pt OUT.pt --batches N --batch-size B --ratio R --threads T -> one JSON line
 */
import { loadModel, gatherStats, plan, prune, setNumThreads } from '../lib';
import { randomBatches, flag } from './util';

async function main(): Promise<void> {
  const [model, out] = process.argv.slice(2);
  const threads = Number(flag('--threads', '1'));
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
  const { model: pruned } = await prune(m, p);
  lap('prune');
  await pruned.save(out);
  lap('save');
  seconds.total = (performance.now() - start) / 1000;
  mark = performance.now();
  for (const batch of batches) await m.forward(batch);
  lap('forwards');
  seconds.floor = seconds.load + seconds.forwards + seconds.save;
  process.stdout.write(JSON.stringify({ seconds, pruned: p.totals.pruned }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error.code ?? ''} ${error.message}\n`);
  process.exit(1);
});
