/**
 * The `vbp` command line: inspect, stats, prune, eval, bench and demo. Errors print one line and exit 1;
 * bad usage exits 2. --json prints one JSON document on stdout and nothing else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { VbpError } from '../errors';
import { writeFileAtomically } from '../fsutil';
import { batches } from '../data/dataset';
import { evaluate } from '../evaluate';
import { measureLatency } from '../latency';
import { loadModel, probeInput, type Model } from '../model';
import { plan, savePlan, type Criterion, type PlanOptions, type Scope } from '../plan';
import { prune } from '../prune';
import { gatherStats, Stats } from '../stats';
import { versionInfo, getNumThreads } from '../device';
import { BUNDLED_MODEL, runDemo, type DemoResult } from '../demo';
import { demoHtml, demoTable } from '../report/demo-report';
import {
  applyGlobalOptions,
  cardFor,
  checkOutput,
  existingFile,
  formatCount,
  openDataset,
  parseFraction,
  parseInteger,
  parseNumberList,
  percent,
  progressFor,
  table,
  type DataOptions,
  type GlobalOptions,
} from './common';

type Options = GlobalOptions & DataOptions & Record<string, string | boolean | undefined>;

function print(options: GlobalOptions, human: string, data: unknown): void {
  if (options.json) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else if (!options.quiet) process.stdout.write(human + '\n');
}

function withCommon(command: Command): Command {
  return command
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--threads <n>', 'LibTorch and OpenBLAS intra-op threads')
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'print nothing but errors');
}

function withData(command: Command, split: 'train' | 'test'): Command {
  return command
    .option('--data <source>', "'fashion-mnist', a folder of IDX files, an .npy file or an ImageFolder folder")
    .option('--split <split>', 'train or test (IDX data)', split)
    .option('--labels <file.npy>', 'labels for .npy data')
    .option('--mean <list>', 'per-channel mean after scaling to [0, 1] (default: from the model card)')
    .option('--std <list>', 'per-channel std (default: from the model card)')
    .option('--crop <px>', 'image folders: center crop size (default 224 or the model card)')
    .option('--resize <px>', 'image folders: shorter side before cropping (default crop / 0.875)')
    .option('--interpolation <kind>', 'image folders: bicubic, bilinear or nearest', 'bicubic')
    .option('--channels <n>', 'image folders: 3 (RGB) or 1 (grey)')
    .option('--limit <n>', 'use at most this many items')
    .option('--batch-size <n>', 'items per batch', '64')
    .option('--seed <n>', 'shuffle seed', '0')
    .option('--no-shuffle', 'keep the data set order');
}

async function openModel(file: string, options: GlobalOptions): Promise<Model> {
  existingFile(file, 'model');
  return loadModel(file, { device: options.device });
}

function inputShapeOf(modelFile: string, flag: string | undefined): number[] | undefined {
  if (flag) return parseNumberList(flag, '--input-shape');
  return cardFor(modelFile)?.inputShape;
}

async function statsFromData(model: Model, modelFile: string, options: Options): Promise<Stats> {
  const dataset = openDataset(options, cardFor(modelFile), 'train');
  const limit = options.limit ? parseInteger(String(options.limit), '--limit', 1) : Math.min(dataset.size, 2048);
  const progress = progressFor(options);
  progress.start('calibrating', Math.min(limit, dataset.size));
  try {
    return await gatherStats(
      model,
      batches(dataset, {
        batchSize: parseInteger(String(options.batchSize), '--batch-size', 1),
        shuffle: options.shuffle !== false,
        seed: parseInteger(String(options.seed), '--seed'),
        limit,
      }),
      { onProgress: (p) => progress.update(p.items) },
    );
  } finally {
    progress.stop();
  }
}

async function inspectCommand(file: string, options: Options): Promise<void> {
  const model = await openModel(file, options);
  try {
    const mlps = await model.mlps().catch((error: VbpError) => {
      if (error.code === 'NO_MLP') return [];
      throw error;
    });
    const parameters = model.parameterCount();
    const shape = inputShapeOf(file, options.inputShape as string | undefined);
    let macs: number | undefined;
    let tokens: number[] = [];
    if (shape) {
      macs = (await model.macs([1, ...shape])).total;
      if (mlps.length) {
        const stats = await gatherStats(model, [probeInput([1, ...shape])]);
        tokens = stats.layers.map((_, i) => stats.tokensPerItem(i));
      }
    }
    const blocks = mlps.map((m, i) => ({
      ...m,
      parameters: m.hidden * (m.inFeatures + m.outFeatures) + m.hidden + m.outFeatures,
      macs: tokens.length ? tokens[i] * m.hidden * (m.inFeatures + m.outFeatures) : undefined,
    }));
    const human = [
      `${file}: ${formatCount(parameters)} parameters${macs !== undefined ? `, ${formatCount(macs)} MACs per input [${shape}]` : ' (pass --input-shape C,H,W for MACs)'}`,
      mlps.length
        ? table(
            ['MLP block', 'fc2', 'in -> hidden -> out', 'activation', 'params', 'MACs'],
            blocks.map((b) => [b.fc1, b.fc2, `${b.inFeatures} -> ${b.hidden} -> ${b.outFeatures}`, b.activation, formatCount(b.parameters), b.macs !== undefined ? formatCount(b.macs) : '']),
          )
        : 'no MLP block (Linear -> element-wise ops -> Linear) found',
    ].join('\n');
    print(options, human, { model: file, parameters, macs, inputShape: shape, submodules: model.submodules().length, mlps: blocks });
  } finally {
    model.dispose();
  }
}

async function statsCommand(file: string, options: Options): Promise<void> {
  const out = checkOutput(options.out as string, [file], options.force as boolean);
  const model = await openModel(file, options);
  try {
    const stats = await statsFromData(model, file, options);
    await stats.save(out, { overwrite: Boolean(options.force) });
    const summary = stats.summary();
    print(
      options,
      `${stats.info.items} items, ${stats.layers.length} MLP blocks -> ${out}\n` +
        table(['MLP block', 'hidden', 'samples', 'mean variance', 'non-finite'], summary.layers.map((l) => [l.fc1, String(l.hidden), String(l.count), l.meanVariance.toExponential(3), String(l.nonFinite)])),
      { out, ...summary },
    );
  } finally {
    model.dispose();
  }
}

function planOptions(options: Options): PlanOptions {
  const targets = ['ratio', 'macsReduction', 'paramsReduction'].filter((k) => options[k] !== undefined);
  if (targets.length !== 1) throw new VbpError('INVALID_ARGUMENT', 'give exactly one of --ratio, --macs-reduction or --params-reduction');
  return {
    criterion: options.criterion as Criterion,
    scope: options.scope as Scope,
    ratio: options.ratio !== undefined ? parseFraction(String(options.ratio), '--ratio') : undefined,
    macsReduction: options.macsReduction !== undefined ? parseFraction(String(options.macsReduction), '--macs-reduction') : undefined,
    paramsReduction: options.paramsReduction !== undefined ? parseFraction(String(options.paramsReduction), '--params-reduction') : undefined,
    roundTo: options.roundTo !== undefined ? parseInteger(String(options.roundTo), '--round-to', 1) : undefined,
    seed: parseInteger(String(options.seed ?? '0'), '--seed'),
  };
}

async function pruneCommand(file: string, options: Options): Promise<void> {
  if (Boolean(options.data) === Boolean(options.stats)) throw new VbpError('INVALID_ARGUMENT', 'give either --data (to calibrate) or --stats FILE');
  const inputs = [file, ...(options.stats ? [String(options.stats)] : [])];
  const out = checkOutput(options.out as string, inputs, options.force as boolean);
  const planOut = options.planOut ? checkOutput(String(options.planOut), [...inputs, out], options.force as boolean, '--plan-out') : undefined;
  const choice = planOptions(options);
  const model = await openModel(file, options);
  try {
    const stats = options.stats ? await Stats.load(existingFile(String(options.stats), 'statistics')) : await statsFromData(model, file, options);
    const p = plan(stats, choice);
    const { model: pruned, report } = await prune(model, p, { compensation: options.compensation === false ? 'none' : 'mean' });
    try {
      await pruned.save(out, { overwrite: Boolean(options.force) });
      if (planOut) await savePlan(p, planOut, { overwrite: Boolean(options.force) });
    } finally {
      pruned.dispose();
    }
    const human = [
      `pruned ${p.totals.pruned} of ${p.totals.neurons} MLP neurons (${percent(p.totals.ratio, 1)} %, ${p.criterion}, ${p.scope}, compensation ${report.compensation}) -> ${out}`,
      `parameters ${formatCount(report.parameters.before)} -> ${formatCount(report.parameters.after)} (-${percent(report.parameters.reduction, 1)} %), ` +
        `MACs ${formatCount(report.macs.before)} -> ${formatCount(report.macs.after)} (-${percent(report.macs.reduction, 1)} %) per input [${report.macs.inputShape.slice(1)}]`,
      table(['MLP block', 'hidden', 'kept'], report.layers.map((l) => [l.fc1, String(l.hiddenBefore), String(l.hiddenAfter)])),
    ].join('\n');
    print(options, human, { out, plan: planOut, totals: p.totals, report });
  } finally {
    model.dispose();
  }
}

async function evalCommand(file: string, options: Options): Promise<void> {
  const dataset = openDataset(options, cardFor(file), 'test');
  const model = await openModel(file, options);
  try {
    const progress = progressFor(options);
    const limit = options.limit ? parseInteger(String(options.limit), '--limit', 1) : undefined;
    progress.start('evaluating', Math.min(limit ?? dataset.size, dataset.size));
    const result = await evaluate(model, dataset, {
      limit,
      batchSize: parseInteger(String(options.batchSize), '--batch-size', 1),
      onProgress: (p) => progress.update(p.items),
    }).finally(() => progress.stop());
    const { predictions, logits, ...numbers } = result;
    print(
      options,
      `${dataset.description}: top-1 ${percent(result.top1)} %, top-5 ${percent(result.top5)} % (${result.correct1}/${result.items}), ${result.itemsPerSecond.toFixed(0)} items/s`,
      { model: file, data: dataset.description, ...numbers },
    );
  } finally {
    model.dispose();
  }
}

async function benchCommand(file: string, options: Options): Promise<void> {
  const shape = inputShapeOf(file, options.inputShape as string | undefined);
  if (!shape) throw new VbpError('INVALID_ARGUMENT', '--input-shape C,H,W is required (the model has no model card)');
  const sizes = parseNumberList(String(options.batchSizes), '--batch-sizes');
  const model = await openModel(file, options);
  try {
    const results = [];
    for (const size of sizes) {
      results.push(await measureLatency(model, shape, parseInteger(String(size), '--batch-sizes', 1), {
        runs: parseInteger(String(options.runs), '--runs', 1),
        warmup: parseInteger(String(options.warmup), '--warmup'),
      }));
    }
    print(
      options,
      `${file} on ${options.device}, ${getNumThreads()} thread(s), input [${shape}]\n` +
        table(['batch', 'median ms', 'p10 ms', 'p90 ms', 'items/s'], results.map((r) => [String(r.batchSize), r.medianMs.toFixed(3), r.p10Ms.toFixed(3), r.p90Ms.toFixed(3), r.itemsPerSecond.toFixed(1)])),
      { model: file, device: options.device, threads: getNumThreads(), inputShape: shape, results },
    );
  } finally {
    model.dispose();
  }
}

async function demoCommand(options: Options): Promise<void> {
  const outDir = path.resolve(String(options.out));
  const modelFile = options.model ? String(options.model) : BUNDLED_MODEL;
  existingFile(modelFile, 'model');
  fs.mkdirSync(outDir, { recursive: true });
  const progress = progressFor(options);
  let currentStage = '';
  const quick = Boolean(options.quick);
  if (!options.json && !options.quiet) {
    const info = versionInfo();
    process.stderr.write(
      `torch-vbp demo: ${path.relative(process.cwd(), modelFile) || modelFile} (a DeiT we trained on Fashion-MNIST, not an ImageNet DeiT)\n` +
        `LibTorch ${info.torch} ${info.cuda ? 'CUDA' : 'CPU'}, device ${options.device}, ${getNumThreads()} thread(s)\n`,
    );
  }
  const result: DemoResult = await runDemo({
    model: modelFile,
    data: options.data ? String(options.data) : undefined,
    device: options.device,
    calibrationImages: parseInteger(String(options.calibration), '--calibration', 1),
    ratios: options.ratios ? parseNumberList(String(options.ratios), '--ratios') : undefined,
    testLimit: quick ? 1000 : options.testLimit ? parseInteger(String(options.testLimit), '--test-limit', 1) : undefined,
    latencyRuns: quick ? 10 : 50,
    onStage: (stage, done, total) => {
      if (stage !== currentStage) {
        currentStage = stage;
        progress.start(stage, total);
      }
      progress.update(done);
    },
  }).finally(() => progress.stop());
  const jsonFile = path.join(outDir, 'results.json');
  const htmlFile = path.join(outDir, 'report.html');
  await writeFileAtomically(jsonFile, JSON.stringify(result, null, 2) + '\n');
  await writeFileAtomically(htmlFile, demoHtml(result));
  print(
    options,
    `${demoTable(result)}\n\ncalibration ${result.data.calibrationImages} training images, top-1 on ${result.data.testImages} test images, no fine-tuning; ` +
      `latency: median forward time, speed-up = original / pruned (VBP rows)\nwrote ${jsonFile} and ${htmlFile} (${(result.timings.totalMs / 1000).toFixed(0)} s)`,
    { results: jsonFile, report: htmlFile, ...result },
  );
}

export function buildProgram(): Command {
  const program = new Command('vbp')
    .description('Variance-Based Pruning of TorchScript vision transformers (torch-vbp)')
    .version(versionInfo().version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  withCommon(program.command('inspect').argument('<model>', 'TorchScript model file'))
    .description('list MLP blocks, parameters and MACs of a model')
    .option('--input-shape <C,H,W>', 'input item shape for MACs (default: from the model card)')
    .action((model: string, options: Options) => run(options, () => inspectCommand(model, options)));

  withData(withCommon(program.command('stats').argument('<model>', 'TorchScript model file')), 'train')
    .description('gather activation statistics of every MLP block on calibration data')
    .requiredOption('--out <file>', 'statistics file to write (safetensors)')
    .option('--force', 'replace an existing output file')
    .action((model: string, options: Options) => run(options, () => statsCommand(model, options)));

  withData(withCommon(program.command('prune').argument('<model>', 'TorchScript model file')), 'train')
    .description('prune MLP hidden neurons and write a smaller TorchScript model')
    .option('--stats <file>', 'statistics from `vbp stats` instead of --data')
    .option('--ratio <r>', 'fraction of all MLP neurons to remove, e.g. 0.5 or 50%')
    .option('--macs-reduction <r>', 'instead of --ratio: remove until the MACs drop by this fraction')
    .option('--params-reduction <r>', 'instead of --ratio: remove until the parameters drop by this fraction')
    .addOption(new Option('--criterion <name>', 'ranking criterion').choices(['variance', 'magnitude', 'random', 'wifv']).default('variance'))
    .addOption(new Option('--scope <scope>', 'rank all blocks together or each block alone').choices(['global', 'per-layer']).default('global'))
    .option('--round-to <n>', 'keep a multiple of n neurons per block')
    .option('--no-compensation', 'do not fold removed neurons\' means into fc2.bias')
    .requiredOption('--out <file>', 'pruned model file to write')
    .option('--plan-out <file>', 'also write the plan (JSON)')
    .option('--force', 'replace existing output files')
    .action((model: string, options: Options) => run(options, () => pruneCommand(model, options)));

  withData(withCommon(program.command('eval').argument('<model>', 'TorchScript model file')), 'test')
    .description('top-1/top-5 accuracy and throughput of a classifier')
    .action((model: string, options: Options) => run(options, () => evalCommand(model, options)));

  withCommon(program.command('bench').argument('<model>', 'TorchScript model file'))
    .description('forward latency (median of repeated runs after warm-up)')
    .option('--input-shape <C,H,W>', 'input item shape (default: from the model card)')
    .option('--batch-sizes <list>', 'batch sizes to time', '1,8')
    .option('--runs <n>', 'timed runs per batch size', '30')
    .option('--warmup <n>', 'untimed runs first', '5')
    .action((model: string, options: Options) => run(options, () => benchCommand(model, options)));

  withCommon(program.command('demo'))
    .description('the main job: prune the bundled Fashion-MNIST DeiT at 20/35/50 % and compare methods')
    .option('--out <dir>', 'folder for results.json and report.html', 'vbp-demo')
    .option('--model <file>', 'model with a model card (default: the bundled one)')
    .option('--data <dir>', 'Fashion-MNIST IDX folder (default: Debian\'s dataset-fashion-mnist)')
    .option('--calibration <n>', 'training images for statistics', '2048')
    .option('--ratios <list>', 'pruning ratios', '0.2,0.35,0.5')
    .option('--test-limit <n>', 'evaluate on the first n test images')
    .option('--quick', 'a fast run on 1,000 test images (for checks)')
    .action((options: Options) => run(options, () => demoCommand(options)));

  return program;
}

let exitCode = 0;

async function run(options: GlobalOptions, job: () => Promise<void>): Promise<void> {
  applyGlobalOptions(options);
  await job();
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      exitCode = error.exitCode === 0 ? 0 : 2;
    } else {
      const e = error instanceof VbpError ? error : new VbpError('INTERNAL', error instanceof Error ? error.stack ?? error.message : String(error));
      process.stderr.write(`vbp: error [${e.code}]: ${e.message}\n`);
      exitCode = e.code === 'INVALID_ARGUMENT' ? 2 : 1;
    }
  }
  return exitCode;
}
