/** vbp bench: forward latency at several batch sizes. */
import type { Command } from 'commander';
import { measureLatency } from '../../measure/latency';
import { getNumThreads } from '../../native/runtime';
import { table } from '../../util/format';
import { parseInteger, parseShape, usageError } from '../args';
import { itemShapeOf, openModel, withCommon, withItemShapeHint, type GlobalOptions, type Run } from '../context';
import { print } from '../output';

/** vbp bench's options, as commander gives them. */
interface BenchCommandOptions extends GlobalOptions {
  inputShape?: string;
  batchSizes?: string;
  runs?: string;
  warmup?: string;
}

async function bench(file: string, options: BenchCommandOptions): Promise<void> {
  if (options.inputShape !== undefined) parseShape(options.inputShape, '--input-shape');
  const sizes = (options.batchSizes ?? '1,8').split(',').map((size) => parseInteger(size.trim(), '--batch-sizes', 1));
  const runs = parseInteger(options.runs ?? '30', '--runs', 1);
  const warmup = parseInteger(options.warmup ?? '5', '--warmup');
  const model = await openModel(file, options);
  try {
    const shape = itemShapeOf(options, model.card);
    if (!shape) throw usageError('--input-shape', 'C,H,W is required (the model has no model card)');
    const results = await withItemShapeHint(shape, options.inputShape !== undefined, async () => {
      const measured = [];
      for (const size of sizes) measured.push(await measureLatency(model, shape, size, { runs, warmup }));
      return measured;
    });
    print(
      options,
      `${file} on ${options.device ?? 'cpu'}, ${getNumThreads()} thread(s), input [${shape}]\n` +
        table(
          ['batch', 'median ms', 'p10 ms', 'p90 ms', 'items/s'],
          results.map((r) => [
            String(r.batchSize),
            r.medianMs.toFixed(3),
            r.p10Ms.toFixed(3),
            r.p90Ms.toFixed(3),
            r.itemsPerSecond.toFixed(1),
          ]),
        ),
      { model: file, device: options.device ?? 'cpu', threads: getNumThreads(), inputShape: shape, results },
    );
  } finally {
    await model.dispose();
  }
}

export function registerBench(program: Command, run: Run): void {
  withCommon(program.command('bench').argument('<model>', 'TorchScript model file'))
    .description('forward latency (median of repeated runs after warm-up)')
    .option('--input-shape <C,H,W>', 'input item shape (default: from the model card)')
    .option('--batch-sizes <list>', 'batch sizes to time', '1,8')
    .option('--runs <n>', 'timed runs per batch size', '30')
    .option('--warmup <n>', 'untimed runs first', '5')
    .action((model: string, options: BenchCommandOptions) => run(options, () => bench(model, options)));
}
