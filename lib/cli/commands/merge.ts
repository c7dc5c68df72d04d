/** vbp merge: statistics shards of one model, gathered on different data, combined exactly. */
import type { Command } from 'commander';
import { Stats } from '../../pipeline/stats';
import { checkReadableFile } from '../../util/files';
import { checkingOption } from '../args';
import type { Options } from '../context';
import { checkOutput, print } from '../output';

async function merge(files: string[], options: Options): Promise<void> {
  const out = checkOutput(options.out as string | undefined, '--out', files, options.force);
  for (const file of files) checkingOption('<stats>', () => checkReadableFile(file, 'statistics file'));
  let merged = await Stats.load(files[0]);
  for (const file of files.slice(1)) merged = merged.merge(await Stats.load(file));
  await merged.save(out, { overwrite: Boolean(options.force) });
  print(options, `merged ${files.length} statistics files (${merged.info.items} items, ${merged.info.batches} batches) -> ${out}`, { out, inputs: files, ...merged.summary() });
}

export function registerMerge(program: Command, run: (options: Options, job: () => Promise<void>) => Promise<void>): void {
  program
    .command('merge')
    .argument('<stats...>', 'statistics files of the same model (from vbp stats)')
    .description('combine statistics shards exactly (Chan\'s formula), e.g. from a job array')
    .option('--out <file>', 'statistics file to write')
    .option('--force', 'replace an existing output file')
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'print nothing but errors')
    .action((files: string[], options: Options) => run(options, () => merge(files, options)));
}
