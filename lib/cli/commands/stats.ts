/** vbp stats: calibration statistics of every MLP block, written to a safetensors file. */
import type { Command } from 'commander';
import { table } from '../../report/format';
import { parseChoice, parseDevice, parseInteger, parseShare, usageError } from '../args';
import { shardOf } from '../../data/shard';
import { calibrate, openModel, SkipLog, withCommon, withData, type Options } from '../context';
import { openDataset } from '../data-source';
import { checkOutput, print } from '../output';

/** --shard I/N. */
function parseShard(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  if (!match) throw usageError('--shard', `must be I/N such as 0/8, got '${value}'`);
  const count = parseInteger(match[2], '--shard', 1);
  const index = parseInteger(match[1], '--shard', 0);
  if (index >= count) throw usageError('--shard', `I must be below N, got ${value}`);
  return { index, count };
}

/** --devices cuda:0,cuda:1 */
function parseDevices(value: string): string[] {
  const devices = value.split(',').map((d) => d.trim());
  if (devices.some((d) => d === '')) throw usageError('--devices', `must be a comma-separated list such as cuda:0,cuda:1, got '${value}'`);
  return devices.map((d) => parseDevice(d, '--devices'));
}

async function stats(file: string, options: Options): Promise<void> {
  const out = checkOutput(options.out as string | undefined, '--out', [file], options.force);
  if (options.shard !== undefined) parseShard(String(options.shard));
  if (options.devices !== undefined) parseDevices(String(options.devices));
  const model = await openModel(file, options);
  try {
    const source = openDataset(options, model.card, file, 'train');
    const shard = options.shard !== undefined ? parseShard(String(options.shard)) : undefined;
    const dataset = shard ? shardOf(source.dataset, shard.index, shard.count) : source.dataset;
    const normalisation = source.normalisation;
    const devices = options.devices !== undefined ? parseDevices(String(options.devices)) : undefined;
    const skipped = new SkipLog();
    for (const [key, flag] of [['covarianceProduct', '--covariance-product'], ['covarianceSampling', '--covariance-sampling']] as const) {
      if (!options.covariance && options[key] !== undefined) throw usageError(flag, 'is an option of --covariance');
    }
    const covariance = options.covariance
      ? {
          covariance: true,
          covarianceProduct: parseChoice(String(options.covarianceProduct ?? 'float64'), '--covariance-product', ['float64', 'float32'] as const),
          covarianceSampling: options.covarianceSampling === undefined || options.covarianceSampling === 'auto' ? ('auto' as const) : parseShare(String(options.covarianceSampling), '--covariance-sampling'),
        }
      : {};
    const result = await calibrate(model, dataset, options, skipped, { ...covariance, ...(devices ? { devices } : {}) });
    await result.save(out, { overwrite: Boolean(options.force) });
    const summary = result.summary();
    print(
      options,
      [
        `${result.info.items} items of ${dataset.description} (normalisation: ${normalisation}), ${result.layers.length} MLP blocks` +
          `${result.hasCovariance ? `, with covariance (${(result.covarianceBytes / 2 ** 20).toFixed(1)} MiB)` : ''} -> ${out}`,
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
    .option('--covariance', "also gather each block's covariance (for --compensation lsq)")
    .option('--covariance-product <type>', 'float64 (default) or float32 (faster without sampling; about 2e-7 of the largest entry off)')
    .option('--covariance-sampling <share>', "share of the tokens the covariance uses, in (0, 1], or auto (default: all up to 1,024 neurons per block, else 0.25)")
    .option('--shard <I/N>', 'calibrate on shard I of N (items I, I+N, I+2N... of the data set); merge the N files with vbp merge')
    .option('--devices <list>', "replicas on several devices at once, e.g. cuda:0,cuda:1 (or cpu,cpu), merged exactly")
    .option('--out <file>', 'statistics file to write (safetensors)')
    .option('--force', 'replace an existing output file')
    .action((model: string, options: Options) => run(options, () => stats(model, options)));
}
