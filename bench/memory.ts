/**
 * Memory of plain inference, calibration or fine-tuning (distillation from the model itself), in its own
 * process so that peaks do not mix:
 *   node dist/bench/memory.js forward|calibrate|finetune MODEL C,H,W --batches N --batch-size B --sample-every K
 * Prints one JSON line: peak RSS (MB) and RSS samples taken every K batches after the first K.
 */
import fs from 'node:fs';
import { finetune, keepLargeAllocations, loadModel, setNumThreads, StatsCollector } from '../lib';
import { flag, randomBatches } from './util';

/**
 * The process's RSS high-water mark (VmHWM). Not resourceUsage().maxRSS: that survives exec, so a child
 * spawned by a large parent starts with the parent's size.
 */
function peakRssMb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

async function main(): Promise<void> {
  const [mode, model, shapeText] = process.argv.slice(2);
  keepLargeAllocations(64 * 2 ** 20);
  setNumThreads(Number(flag('--threads', '1')));
  const count = Number(flag('--batches', '10'));
  const every = Number(flag('--sample-every', '10'));
  const shape = shapeText.split(',').map(Number);
  // A few distinct batches reused in turn: the data set itself must not grow memory.
  const batches = randomBatches(4, Number(flag('--batch-size', '8')), shape);
  const m = await loadModel(model);
  if (mode === 'finetune') {
    const samples: number[] = [];
    const labels = Int32Array.from({ length: batches[0].shape[0] }, (_, i) => i % 10);
    const data = async function* () {
      for (let i = 0; ; i++) yield { input: batches[i % batches.length], labels };
    };
    const { model: tuned } = await finetune(m, {
      teacher: m,
      data: () => data(),
      stepsPerEpoch: count,
      lr: 1e-4,
      batchSize: batches[0].shape[0],
      onProgress: (p) => p.step % every === 0 && samples.push(process.memoryUsage().rss / 2 ** 20),
    });
    await tuned.dispose();
    process.stdout.write(
      JSON.stringify({ mode, batches: count, peakRssMb: peakRssMb(), rssSamplesMb: samples }) + '\n',
    );
    return;
  }
  const collector = mode === 'calibrate' ? await StatsCollector.create(m) : undefined;
  const samples: number[] = [];
  for (let i = 1; i <= count; i++) {
    const batch = batches[i % batches.length];
    if (collector) await collector.add(batch);
    else await m.forward(batch);
    if (i % every === 0) samples.push(process.memoryUsage().rss / 2 ** 20);
  }
  if (collector) await collector.finish();
  process.stdout.write(JSON.stringify({ mode, batches: count, peakRssMb: peakRssMb(), rssSamplesMb: samples }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error.code ?? ''} ${error.message}\n`);
  process.exit(1);
});
