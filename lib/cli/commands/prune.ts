/** vbp prune: a smaller model from calibration data, saved statistics or a saved plan. */
import { Option, type Command } from 'commander';
import { modelCardPath } from '../../formats/model-card';
import { CRITERIA, type Criterion } from '../../pruning/criteria';
import type { Model } from '../../model/model';
import { describeTarget, type Plan } from '../../pruning/plan';
import { loadPlan, planOutput } from '../../pruning/plan-file';
import { planPruning, type PlanningOptions } from '../../pruning/planning';
import { DEFAULT_RIDGE, prune, type Compensation } from '../../pruning/prune';
import type { Scope } from '../../pruning/selection';
import { Stats } from '../../statistics/stats';
import { formatCount, reduction, table } from '../../util/format';
import { checkReadableFile, writeAllAtomically, type PendingOutput } from '../../util/files';
import {
  checkingOption,
  parseChoice,
  parseFraction,
  parseInteger,
  parseNumber,
  readingInput,
  usageError,
} from '../args';
import {
  calibrate,
  openModel,
  SkipLog,
  withCommon,
  withData,
  type CalibrationOptions,
  type GlobalOptions,
  type Run,
} from '../context';
import { DATA_OPTIONS, openDataset, type DataOptions } from '../data-source';
import { checkOutput, print } from '../output';
import { joinGroupFromEnvironment, writesOutputs } from '../ranks';
import { warnIfPartial } from './stats';

/** vbp prune's options, as commander gives them. */
interface PruneCommandOptions extends GlobalOptions, DataOptions, CalibrationOptions {
  stats?: string;
  plan?: string;
  ratio?: string;
  macsReduction?: string;
  paramsReduction?: string;
  criterion?: string;
  scope?: string;
  roundTo?: string;
  /** --compensation KIND, or false from --no-compensation. */
  compensation?: string | false;
  ridge?: string;
  out?: string;
  planOut?: string;
  force?: boolean;
}

const SOURCES = ['data', 'stats', 'plan'] as const;
const TARGETS = [
  ['ratio', '--ratio'],
  ['macsReduction', '--macs-reduction'],
  ['paramsReduction', '--params-reduction'],
] as const;
const PLAN_SHAPING = [
  ['criterion', '--criterion'],
  ['scope', '--scope'],
  ['roundTo', '--round-to'],
  ...TARGETS,
] as const;

/** How to plan (planPruning()'s options), or undefined with --plan (which fixes them all). */
function planOptions(options: PruneCommandOptions): PlanningOptions | undefined {
  // --plan with --stats: the plan says which neurons go, the statistics give least squares its covariance.
  const given = SOURCES.filter((k) => options[k] !== undefined && !(k === 'stats' && options.plan !== undefined));
  if (given.length !== 1)
    throw usageError(
      '--data/--stats/--plan',
      given.length
        ? `give only one of them, got ${given.map((k) => `--${k}`).join(' and ')}`
        : 'give one: --data (to calibrate), --stats FILE or --plan FILE',
    );
  if (options.plan !== undefined) {
    const extra = PLAN_SHAPING.find(([key]) => options[key] !== undefined);
    if (extra) throw usageError(extra[1], 'cannot be combined with --plan (the plan fixes which neurons go)');
    return undefined;
  }
  const targets = TARGETS.flatMap(([key, flag]) => {
    const value = options[key];
    return value === undefined ? [] : [{ key, flag, value }];
  });
  if (targets.length !== 1)
    throw usageError(
      '--ratio',
      targets.length
        ? `give only one of ${targets.map(({ flag }) => flag).join(' and ')}`
        : 'give one of --ratio, --macs-reduction or --params-reduction',
    );
  const { key, flag, value } = targets[0];
  if (options.criterion === 'compensated') {
    if (key !== 'ratio') throw usageError(flag, '--criterion compensated takes --ratio only');
    if (options.scope !== undefined && options.scope !== 'global')
      throw usageError('--scope', '--criterion compensated is global');
    if (options.roundTo !== undefined)
      throw usageError('--round-to', 'cannot be combined with --criterion compensated');
    if (options.compensation !== 'lsq')
      throw usageError('--criterion', 'compensated selects for least squares: add --compensation lsq');
    return { criterion: 'compensated', ratio: parseFraction(value, '--ratio') };
  }
  return {
    criterion: parseChoice(options.criterion ?? 'variance', '--criterion', [
      ...Object.keys(CRITERIA),
      'compensated',
    ] as Criterion[]),
    scope: parseChoice(options.scope ?? 'global', '--scope', ['global', 'per-layer'] as Scope[]),
    [key]: parseFraction(value, flag),
    roundTo: options.roundTo !== undefined ? parseInteger(options.roundTo, '--round-to', 1) : undefined,
    seed: parseInteger(options.seed ?? '0', '--seed'),
  };
}

function compensationOf(options: PruneCommandOptions): { compensation: Compensation; ridge?: number } {
  const compensation =
    options.compensation === false
      ? 'none'
      : parseChoice(options.compensation ?? 'mean', '--compensation', ['mean', 'lsq', 'none'] as Compensation[]);
  if (options.ridge === undefined) return { compensation };
  if (compensation !== 'lsq') throw usageError('--ridge', 'is an option of --compensation lsq');
  return { compensation, ridge: parseNumber(options.ridge, '--ridge', 0) };
}

/** Statistics from --stats, or gathered on --data; whether they fit the model is the pipeline's check. */
async function statsFor(
  model: Model,
  file: string,
  options: PruneCommandOptions,
  skipped: SkipLog,
  covariance: boolean,
): Promise<Stats> {
  const statsFile = options.stats;
  if (statsFile === undefined) {
    const { dataset } = openDataset(options, model.card, file, 'train');
    // SNIP scores need the labels of --data, and a backward pass per batch: only for the criterion that uses them.
    return calibrate(model, dataset, options, skipped, {
      covariance,
      ...(options.criterion === 'snip' ? { snip: true } : {}),
    });
  }
  const stats = await readingInput('--stats', () => Stats.load(statsFile));
  warnIfPartial(stats, statsFile, options);
  if (options.criterion === 'snip' && stats.layers.some((l) => !l.saliency))
    throw usageError(
      '--criterion',
      `snip needs SNIP scores, which '${statsFile}' has not: gather them with vbp stats --snip`,
    );
  return stats;
}

/** With --stats or --plan there is no data to read: options about data are refused, not ignored. */
function checkNoDataOptions(options: PruneCommandOptions, command: Command): void {
  if (options.data !== undefined) return;
  for (const key of DATA_OPTIONS) {
    if (command.getOptionValueSource(key) === 'cli') {
      const flag = key === 'shuffle' ? '--no-shuffle' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      throw usageError(
        flag,
        `is about --data; with ${options.stats !== undefined ? '--stats' : '--plan'} no data is read`,
      );
    }
  }
}

async function pruneCommand(file: string, options: PruneCommandOptions, command: Command): Promise<void> {
  const choice = planOptions(options);
  checkNoDataOptions(options, command);
  const { compensation, ridge } = compensationOf(options);
  if (compensation === 'lsq' && options.plan !== undefined && options.stats === undefined) {
    throw usageError('--compensation', 'lsq with --plan needs --stats FILE (statistics gathered with --covariance)');
  }
  const { stats: statsFile, plan: planFile } = options;
  const inputs = [file, ...[statsFile, planFile].filter((f) => f !== undefined)];
  if (statsFile !== undefined) checkingOption('--stats', () => checkReadableFile(statsFile, 'statistics file'));
  if (planFile !== undefined) checkingOption('--plan', () => checkReadableFile(planFile, 'plan file'));
  const out = checkOutput(options.out, '--out', inputs, options.force);
  const planOut =
    options.planOut !== undefined
      ? checkOutput(options.planOut, '--plan-out', [...inputs, out], options.force)
      : undefined;
  if (planOut === out) throw usageError('--plan-out', 'must differ from --out');
  // Under vbp launch the ranks calibrate on parts of --data; each prunes the same model with the merged statistics.
  if (options.data !== undefined) await joinGroupFromEnvironment();
  const model = await openModel(file, options);
  try {
    const cardOut = model.card
      ? checkOutput(
          modelCardPath(out),
          '--out (its model card)',
          [...inputs, ...(planOut ? [planOut] : [])],
          options.force,
        )
      : undefined;
    const skipped = new SkipLog();
    const lsq = compensation === 'lsq';
    const stats = choice || lsq ? await statsFor(model, file, options, skipped, lsq) : undefined;
    const p: Plan = choice
      ? await planPruning(model, stats!, choice)
      : await readingInput('--plan', () => loadPlan(planFile!));
    const { model: pruned, report } = await prune(model, p, lsq ? { compensation, ridge, stats } : { compensation });
    try {
      const outputs: PendingOutput[] = pruned.outputsFor(out, { cardBeside: true });
      if (planOut) outputs.push(planOutput(p, planOut));
      if (writesOutputs()) await writeAllAtomically(outputs, { overwrite: Boolean(options.force) });
    } finally {
      await pruned.dispose();
    }
    const human = [
      `pruned ${p.totals.pruned} of ${p.totals.neurons} MLP neurons (${p.criterion}, ${p.scope}${p.roundTo > 1 ? `, widths multiples of ${p.roundTo}` : ''}, ` +
        `compensation ${report.compensation}${lsq ? ` ridge ${ridge ?? DEFAULT_RIDGE}` : ''}) -> ${out}${cardOut ? ` (+ model card ${cardOut})` : ''}`,
      describeTarget(p),
      `parameters ${formatCount(report.parameters.before)} -> ${formatCount(report.parameters.after)} (${reduction(report.parameters.reduction)}), ` +
        `MACs ${formatCount(report.macs.before)} -> ${formatCount(report.macs.after)} (${reduction(report.macs.reduction)}) per input [${report.macs.inputShape.slice(1)}]`,
      ...(skipped.count ? [skipped.describe()] : []),
      table(
        ['fc1', 'hidden', 'kept'],
        report.layers.map((l) => [l.fc1, String(l.hiddenBefore), String(l.hiddenAfter)]),
      ),
    ].join('\n');
    print(options, human, {
      out,
      card: cardOut,
      plan: planOut,
      target: p.target,
      totals: p.totals,
      skipped: skipped.count,
      report,
    });
  } finally {
    await model.dispose();
  }
}

export function registerPrune(program: Command, run: Run): void {
  withData(withCommon(program.command('prune').argument('<model>', 'TorchScript model file')), 'train', true)
    .description(
      'prune MLP hidden neurons and write a smaller TorchScript model (with the model card, inside and beside it)',
    )
    .option('--stats <file>', 'statistics from `vbp stats` instead of --data')
    .option('--plan <file>', 'apply a saved plan (from --plan-out) instead of making one')
    .option('--ratio <r>', 'fraction of all MLP neurons to remove, e.g. 0.5 or 50% (floor(r * neurons) of them)')
    .option('--macs-reduction <r>', 'instead of --ratio: remove until the MACs drop by at least this fraction')
    .option('--params-reduction <r>', 'instead of --ratio: remove until the parameters drop by at least this fraction')
    .option(
      '--criterion <name>',
      `ranking criterion: ${Object.keys(CRITERIA).join(', ')} (default: variance), or compensated (with --compensation lsq)`,
    )
    .option('--scope <scope>', 'global (default: rank all blocks together) or per-layer')
    .option('--round-to <n>', 'keep a multiple of n neurons per block (the target is still met)')
    .addOption(
      new Option(
        '--compensation <kind>',
        "mean (default: fold removed neurons' means into fc2.bias), lsq (least squares from the covariance) or none",
      ),
    )
    .option('--no-compensation', 'the same as --compensation none')
    .option(
      '--ridge <r>',
      `--compensation lsq: ridge relative to the kept neurons' mean variance (default ${DEFAULT_RIDGE})`,
    )
    .option('--out <file>', 'pruned model file to write')
    .option('--plan-out <file>', 'also write the plan (JSON)')
    .option('--force', 'replace existing output files')
    .action((model: string, options: PruneCommandOptions, command: Command) =>
      run(options, () => pruneCommand(model, options, command)),
    );
}
