/** vbp stats: calibration statistics of every MLP block, written to a safetensors file. */
import type { Command } from 'commander';
import { table } from '../../report/format';
import { calibrate, openModel, SkipLog, withCommon, withData, type Options } from '../context';
import { openDataset } from '../data-source';
import { checkOutput, print } from '../output';

async function stats(file: string, options: Options): Promise<void> {
  const out = checkOutput(options.out as string | undefined, '--out', [file], options.force);
  const model = await openModel(file, options);
  try {
    const { dataset, normalisation } = openDataset(options, model.card, file, 'train');
    const skipped = new SkipLog();
    const result = await calibrate(model, dataset, options, skipped);
    await result.save(out, { overwrite: Boolean(options.force) });
    const summary = result.summary();
    print(
      options,
      [
        `${result.info.items} items of ${dataset.description} (normalisation: ${normalisation}), ${result.layers.length} MLP blocks -> ${out}`,
        ...(skipped.count ? [skipped.describe()] : []),
        table(['fc1', 'hidden', 'samples', 'mean variance', 'non-finite'], summary.layers.map((l) => [l.fc1, String(l.hidden), String(l.count), l.meanVariance.toExponential(3), String(l.nonFinite)])),
      ].join('\n'),
      { out, data: dataset.description, normalisation, skipped: skipped.count, ...summary },
    );
  } finally {
    await model.dispose();
  }
}

export function registerStats(program: Command, run: (options: Options, job: () => Promise<void>) => Promise<void>): void {
  withData(withCommon(program.command('stats').argument('<model>', 'TorchScript model file')), 'train', true)
    .description('gather activation statistics of every MLP block on calibration data')
    .option('--out <file>', 'statistics file to write (safetensors)')
    .option('--force', 'replace an existing output file')
    .action((model: string, options: Options) => run(options, () => stats(model, options)));
}
