/** vbp demo: the main job on the bundled model, with a table, results.json and report.html. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { isIdxFolder } from '../../data/idx-dataset';
import { BUNDLED_MODEL, DEMO_FINETUNE, DEMO_RATIOS, runDemo } from '../../demo/run';
import { getNumThreads, versionInfo } from '../../native/runtime';
import { demoHtml, demoTable, finetuneCaption } from '../../report/demo-report';
import { checkReadableFile, writeAllAtomically } from '../../util/files';
import { checkingOption, parseInteger, parseNumberList, usageError } from '../args';
import { progressFor, type GlobalOptions, type Run } from '../context';
import { checkOutput, print } from '../output';

/** --quick: a fine-tuning epoch of 20 batches. */
const QUICK_FINETUNE_ITEMS = 2560;

interface DemoSettings {
  data?: string;
  outDir: string;
  jsonFile: string;
  htmlFile: string;
  model: string;
  ratios: number[];
  calibration: number;
  testLimit?: number;
  finetuneItems: number;
}

/** vbp demo's options, as commander gives them. */
interface DemoCommandOptions extends GlobalOptions {
  out?: string;
  force?: boolean;
  model?: string;
  data?: string;
  calibration?: string;
  ratios?: string;
  testLimit?: string;
  finetuneItems?: string;
  quick?: boolean;
}

/** Everything checked before the folder is made or any work starts. */
function demoSettings(options: DemoCommandOptions): DemoSettings {
  const outDir = path.resolve(options.out ?? 'vbp-demo');
  const stat = fs.statSync(outDir, { throwIfNoEntry: false });
  if (stat && !stat.isDirectory())
    throw usageError(
      '--out',
      `'${options.out}' is a file; the demo writes results.json and report.html into a folder`,
      'IO',
    );
  if (!stat && !fs.statSync(path.dirname(outDir), { throwIfNoEntry: false })?.isDirectory())
    throw usageError('--out', `the folder above '${outDir}' does not exist`, 'IO');
  const ratios = parseNumberList(options.ratios ?? DEMO_RATIOS.join(','), '--ratios');
  if (ratios.some((r) => !(r > 0 && r < 1)))
    throw usageError('--ratios', `every ratio must lie in (0, 1), got '${options.ratios}'`);
  const data = options.data;
  if (data !== undefined && !isIdxFolder(data))
    throw usageError('--data', `'${data}' is not a folder of Fashion-MNIST IDX files`, 'IO');
  const model = options.model ?? BUNDLED_MODEL;
  checkingOption('--model', () => checkReadableFile(model, 'model'));
  const jsonFile = path.join(outDir, 'results.json');
  const htmlFile = path.join(outDir, 'report.html');
  if (stat) {
    checkOutput(jsonFile, '--out', [model], options.force);
    checkOutput(htmlFile, '--out', [model], options.force);
  }
  return {
    data,
    outDir,
    jsonFile,
    htmlFile,
    model,
    ratios,
    calibration: parseInteger(options.calibration ?? '2048', '--calibration', 1),
    testLimit: options.quick
      ? 1000
      : options.testLimit !== undefined
        ? parseInteger(options.testLimit, '--test-limit', 1)
        : undefined,
    finetuneItems:
      options.finetuneItems !== undefined
        ? parseInteger(options.finetuneItems, '--finetune-items', 0)
        : options.quick
          ? QUICK_FINETUNE_ITEMS
          : DEMO_FINETUNE.items,
  };
}

async function demo(options: DemoCommandOptions): Promise<void> {
  const settings = demoSettings(options);
  const progress = progressFor(options);
  let currentStage = '';
  if (!options.json && !options.quiet) {
    const info = versionInfo();
    process.stderr.write(
      `torch-vbp demo: ${path.relative(process.cwd(), settings.model) || settings.model} (a DeiT we trained on Fashion-MNIST, not an ImageNet DeiT)\n` +
        `LibTorch ${info.torch} ${info.cuda ? 'CUDA' : 'CPU'}, device ${options.device ?? 'cpu'}, ${getNumThreads()} thread(s)\n`,
    );
  }
  const result = await runDemo({
    model: settings.model,
    data: settings.data,
    device: options.device,
    calibrationImages: settings.calibration,
    ratios: settings.ratios,
    testLimit: settings.testLimit,
    latencyRuns: options.quick ? 10 : 50,
    finetune: settings.finetuneItems > 0 ? { items: settings.finetuneItems } : false,
    onStage: (stage, done, total) => {
      if (stage !== currentStage) {
        currentStage = stage;
        progress.start(stage, total);
      }
      progress.update(done);
    },
  }).finally(() => progress.stop());
  fs.mkdirSync(settings.outDir, { recursive: true });
  await writeAllAtomically(
    [
      { target: settings.jsonFile, write: (tmp) => fs.promises.writeFile(tmp, JSON.stringify(result, null, 2) + '\n') },
      { target: settings.htmlFile, write: (tmp) => fs.promises.writeFile(tmp, demoHtml(result)) },
    ],
    { overwrite: Boolean(options.force) },
  );
  print(
    options,
    `${demoTable(result)}\n\ncalibration ${result.data.calibrationImages} training images, top-1 on ${result.data.testImages} test images; ${finetuneCaption(result.rows.filter((r) => r.method === 'vbp-finetuned'))};\n` +
      `speed-up: original / pruned forward time, median of ${options.quick ? 10 : 50} alternating pairs (VBP rows); "(noise)": the middle half of the pairs includes 1.00x\n` +
      `wrote ${settings.jsonFile} and ${settings.htmlFile} (${(result.timings.totalMs / 1000).toFixed(0)} s)`,
    { results: settings.jsonFile, report: settings.htmlFile, ...result },
  );
}

export function registerDemo(program: Command, run: Run): void {
  program
    .command('demo')
    .description(
      `the main job: prune the bundled Fashion-MNIST DeiT at ${DEMO_RATIOS.map((r) => r * 100).join('/')} % and compare methods`,
    )
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--threads <n>', 'LibTorch and OpenBLAS intra-op threads')
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'print nothing but errors')
    .option('--out <dir>', 'folder for results.json and report.html', 'vbp-demo')
    .option('--force', 'replace results.json and report.html from an earlier run')
    .option('--model <file>', 'model with a model card (default: the bundled one)')
    .option('--data <dir>', "Fashion-MNIST IDX folder (default: Debian's dataset-fashion-mnist)")
    .option('--calibration <n>', 'training images for statistics', '2048')
    .option('--ratios <list>', 'pruning ratios', DEMO_RATIOS.join(','))
    .option('--test-limit <n>', 'evaluate on the first n test images')
    .option(
      '--finetune-items <n>',
      `training images of the short fine-tuning epoch of the two highest ratios (default ${DEMO_FINETUNE.items}; 0: no fine-tuning)`,
    )
    .option('--quick', `a fast run on 1,000 test images and ${QUICK_FINETUNE_ITEMS} fine-tuning images (for checks)`)
    .action((options: DemoCommandOptions) => run(options, () => demo(options)));
}
