/** vbp merge: statistics shards of one model, gathered on different data, combined exactly. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Command } from 'commander';
import { Stats, type StatsInfo } from '../../statistics/stats';
import { checkReadableFile } from '../../util/files';
import { checkingOption, readingInput, usageError } from '../args';
import type { GlobalOptions, Run } from '../context';
import { checkOutput, print } from '../output';
import { warnIfPartial } from './stats';

/** The shard a file of `vbp stats --shard I/N` holds (its info.shard), if it says. */
function shardIdOf(stats: Stats): string | undefined {
  const shard = (stats.info as StatsInfo & { shard?: { index: number; count: number } }).shard;
  return shard && Number.isInteger(shard.index) && Number.isInteger(shard.count)
    ? `${shard.index}/${shard.count}`
    : undefined;
}

/**
 * Shards counted twice would weigh their data twice: the same file (by path, link or copy: the same
 * contents) or two files of the same shard of one job are refused.
 */
function checkDistinct(files: string[], loaded: Stats[]): void {
  const seen = new Map<string, string>();
  files.forEach((file, i) => {
    const real = fs.realpathSync(file);
    const digest = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    for (const [key, why] of [
      [`file:${real}`, 'is the same file as'],
      [`sha:${digest}`, 'has the same contents as'],
    ] as const) {
      const earlier = seen.get(key);
      if (earlier !== undefined)
        throw usageError('<stats>', `'${file}' ${why} '${earlier}': merging it twice would count its items twice`);
      seen.set(key, file);
    }
    const shard = shardIdOf(loaded[i]);
    if (shard !== undefined) {
      const earlier = seen.get(`shard:${shard}`);
      if (earlier !== undefined)
        throw usageError(
          '<stats>',
          `'${file}' and '${earlier}' both hold shard ${shard} (vbp stats --shard ${shard}): merging both would count its items twice`,
        );
      seen.set(`shard:${shard}`, file);
    }
  });
}

/** vbp merge's options, as commander gives them (--json and --quiet of the global ones). */
interface MergeCommandOptions extends GlobalOptions {
  out?: string;
  force?: boolean;
}

async function merge(files: string[], options: MergeCommandOptions): Promise<void> {
  const out = checkOutput(options.out, '--out', files, options.force);
  for (const file of files) checkingOption('<stats>', () => checkReadableFile(file, 'statistics file'));
  const loaded: Stats[] = [];
  for (const file of files) {
    const stats = await readingInput(undefined, () => Stats.load(file));
    warnIfPartial(stats, file, options);
    loaded.push(stats);
  }
  checkDistinct(files, loaded);
  let merged = loaded[0];
  for (const stats of loaded.slice(1)) merged = merged.merge(stats);
  // The merged statistics are of no one shard.
  const { shard: _shard, ...info } = merged.info as StatsInfo & { shard?: unknown };
  merged = new Stats([...merged.layers], info);
  await merged.save(out, { overwrite: Boolean(options.force) });
  print(
    options,
    `merged ${files.length} statistics files (${merged.info.items} items, ${merged.info.batches} batches) -> ${out}`,
    { out, inputs: files, ...merged.summary() },
  );
}

export function registerMerge(program: Command, run: Run): void {
  program
    .command('merge')
    .argument('<stats...>', 'statistics files of the same model (from vbp stats)')
    .description("combine statistics shards exactly (Chan's formula), e.g. from a job array")
    .option('--out <file>', 'statistics file to write')
    .option('--force', 'replace an existing output file')
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'print nothing but errors')
    .action((files: string[], options: MergeCommandOptions) => run(options, () => merge(files, options)));
}
