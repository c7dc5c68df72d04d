/** vbp eval: top-1/top-5 accuracy and throughput of a classifier on labelled data. */
import type { Command } from 'commander';
import { evaluate } from '../../measure/evaluate';
import { percent } from '../../util/format';
import { parseInteger } from '../args';
import { meteredDataset } from '../../data/meter';
import {
  dataRate,
  openModel,
  progressFor,
  SkipLog,
  withCommon,
  withData,
  withShapeHint,
  type CalibrationOptions,
  type GlobalOptions,
  type Run,
} from '../context';
import { openDataset, type DataOptions } from '../data-source';
import { print } from '../output';
import { joinGroupFromEnvironment } from '../ranks';

/** vbp eval's options, as commander gives them. */
type EvalCommandOptions = GlobalOptions & DataOptions & CalibrationOptions;

async function evalCommand(file: string, options: EvalCommandOptions): Promise<void> {
  const limitOption = options.limit !== undefined ? parseInteger(options.limit, '--limit', 1) : undefined;
  const batchSize = parseInteger(options.batchSize ?? '64', '--batch-size', 1);
  // Under vbp launch the ranks split the items and every rank reports the totals (rank 0 prints them).
  await joinGroupFromEnvironment();
  const model = await openModel(file, options);
  try {
    const source = openDataset(options, model.card, file, 'test', true);
    const { normalisation } = source;
    const meter = meteredDataset(source.dataset);
    const dataset = meter.dataset;
    const limit = Math.min(limitOption ?? dataset.size, dataset.size);
    const skipped = new SkipLog();
    const progress = progressFor(options);
    progress.start('evaluating', limit, true);
    const result = await withShapeHint(dataset, () =>
      evaluate(model, dataset, {
        limit,
        batchSize,
        skipBadItems: Boolean(options.skipBadImages),
        onSkip: skipped.record,
        onProgress: (p) => progress.update(p.items, dataRate(meter)),
        // --raw, --mean/--std and --scale say how the data is prepared; the card's normalisation is checked.
        checkNormalisation: normalisation === 'model card' && options.scale === undefined,
      }),
    ).finally(() => progress.stop());
    const { predictions, logits, ...numbers } = result;
    print(
      options,
      [
        `${dataset.description} (normalisation: ${normalisation}): top-1 ${percent(result.top1)} %, top-5 ${percent(result.top5)} % (${result.correct1}/${result.items}), ${result.itemsPerSecond.toFixed(0)} items/s (the data path alone: ${meter.imagesPerSecond().toFixed(0)})`,
        ...(skipped.count ? [skipped.describe()] : []),
      ].join('\n'),
      {
        model: file,
        data: dataset.description,
        normalisation,
        skipped: skipped.count,
        ...numbers,
        dataItemsPerSecond: meter.imagesPerSecond(),
      },
    );
  } finally {
    await model.dispose();
  }
}

export function registerEval(program: Command, run: Run): void {
  withData(withCommon(program.command('eval').argument('<model>', 'TorchScript model file')), 'test', false)
    .description('top-1/top-5 accuracy and throughput of a classifier on labelled data')
    .action((model: string, options: EvalCommandOptions) => run(options, () => evalCommand(model, options)));
}
