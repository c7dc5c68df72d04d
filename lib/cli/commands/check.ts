/**
 * vbp check: runs a model on inputs saved by PyTorch and compares its outputs with PyTorch's saved outputs
 * (assertClose's semantics). Exit code 0 when they match, 1 when they do not, 2 for bad usage.
 */
import type { Command } from 'commander';
import { VbpError } from '../../errors';
import { isTensor, type Tensor, type Value } from '../../tensor';
import { closeMismatch, compareTensorValues, pyFloat, type CloseOptions } from '../../testing/assert-close';
import { dtypeOfTensor } from '../../formats/dtypes';
import { readTensors } from '../../testing/read-tensors';
import { checkReadableFile } from '../../util/files';
import { checkingOption, ExitWith, parseNumber, readingInput, usageError } from '../args';
import { openModel, withCommon, type GlobalOptions, type Run } from '../context';
import { print } from '../output';
import { table } from '../../util/format';

/** vbp check's options, as commander gives them (--inputs and --expected are required). */
interface CheckCommandOptions extends GlobalOptions {
  inputs: string;
  expected: string;
  rtol?: string;
  atol?: string;
  equalNan?: boolean;
  ignoreDtype?: boolean;
}

function parseTolerance(value: string | undefined, option: string): number | undefined {
  return value === undefined ? undefined : parseNumber(value, option, 0);
}

/** The inputs file as forward's arguments: a tensor is one input, a list or tuple of tensors several. */
function positionalInputs(value: Value, file: string): Tensor[] {
  if (isTensor(value)) return [value];
  if (Array.isArray(value) && value.length > 0 && value.every(isTensor)) return value as Tensor[];
  throw new VbpError(
    'DATA',
    `'${file}' (--inputs) must hold a tensor (one input) or a list/tuple of tensors (positional inputs)`,
  );
}

interface OutputRow {
  path: string;
  shape: number[];
  dtype: string;
  pass: boolean;
  mismatches: number;
  total: number;
  maxAbsDiff: number;
  rtol: number;
  atol: number;
  problem?: string;
}

/**
 * What the model returned at some place, for a message: "a tensor [4, 10]", "a list of 2", "a dict with keys 'a', 'b'".
 */
function describeValue(value: Value | undefined): string {
  if (value === undefined) return 'nothing';
  if (isTensor(value)) return `a tensor [${value.shape.join(', ')}]`;
  if (Array.isArray(value)) return `a list/tuple of ${value.length}`;
  if (value === null) return 'None';
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    return keys.length ? `a dict with keys ${keys.map((k) => `'${k}'`).join(', ')}` : 'an empty dict';
  }
  return `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * One row per tensor of `expected`, compared with the tensor at the same place of `actual`. Where the
 * structures differ, `problem` says how (the table prints it, not only --json).
 */
function rows(
  actual: Value | undefined,
  expected: Value,
  options: CloseOptions,
  path: string,
  out: OutputRow[],
  mismatch?: string,
): void {
  if (isTensor(expected)) {
    const row: OutputRow = {
      path: path || '(output)',
      shape: expected.shape,
      dtype: dtypeOfTensor(expected),
      pass: false,
      mismatches: 0,
      total: expected.data.length,
      maxAbsDiff: 0,
      rtol: 0,
      atol: 0,
    };
    if (mismatch) row.problem = mismatch;
    else if (!isTensor(actual))
      row.problem = `the model gives ${describeValue(actual)} here, PyTorch's file a tensor [${expected.shape.join(', ')}]`;
    else {
      try {
        const c = compareTensorValues(actual, expected, options);
        Object.assign(row, {
          pass: c.mismatches === 0,
          mismatches: c.mismatches,
          maxAbsDiff: c.worstAbsDiff,
          rtol: c.rtol,
          atol: c.atol,
        });
      } catch (error) {
        row.problem = (error as Error).message;
      }
    }
    out.push(row);
    return;
  }
  const where = path || 'the output';
  if (Array.isArray(expected)) {
    const problem =
      mismatch ??
      (!Array.isArray(actual)
        ? `the model gives ${describeValue(actual)} at ${where}, PyTorch's file a list/tuple of ${expected.length}`
        : actual.length !== expected.length
          ? `the model's list/tuple at ${where} has ${actual.length} items, PyTorch's ${expected.length}`
          : undefined);
    expected.forEach((item, i) =>
      rows(Array.isArray(actual) ? actual[i] : undefined, item, options, `${path}[${i}]`, out, problem),
    );
    return;
  }
  if (typeof expected === 'object' && expected !== null) {
    const dict =
      typeof actual === 'object' && actual !== null && !Array.isArray(actual) && !isTensor(actual)
        ? (actual as Record<string, Value>)
        : undefined;
    const keys = Object.keys(expected);
    const problem =
      mismatch ??
      (dict
        ? undefined
        : `the model gives ${describeValue(actual)} at ${where}, PyTorch's file ${describeValue(expected)}`);
    for (const key of keys) {
      const missing =
        !problem && dict && !(key in dict)
          ? `the model's dict at ${where} has no key '${key}' (it has ${
              Object.keys(dict)
                .map((k) => `'${k}'`)
                .join(', ') || 'none'
            })`
          : undefined;
      rows(
        dict?.[key],
        (expected as Record<string, Value>)[key],
        options,
        `${path}['${key}']`,
        out,
        problem ?? missing,
      );
    }
  }
}

/** Why rows failed without a comparison (structure, shape, dtype): one line per distinct reason. */
function problemLines(outputs: OutputRow[]): string[] {
  const byProblem = new Map<string, string[]>();
  for (const r of outputs) if (r.problem) byProblem.set(r.problem, [...(byProblem.get(r.problem) ?? []), r.path]);
  return [...byProblem].map(([problem, paths]) => `${paths.join(', ')}: ${problem}`);
}

async function check(file: string, options: CheckCommandOptions): Promise<void> {
  const rtol = parseTolerance(options.rtol, '--rtol');
  const atol = parseTolerance(options.atol, '--atol');
  if ((rtol === undefined) !== (atol === undefined))
    throw usageError(
      rtol === undefined ? '--atol' : '--rtol',
      'give both --rtol and --atol, or neither (the defaults of the dtypes)',
    );
  const { inputs: inputsFile, expected: expectedFile } = options;
  checkingOption('--inputs', () => checkReadableFile(inputsFile, 'inputs file'));
  checkingOption('--expected', () => checkReadableFile(expectedFile, 'expected outputs file'));
  const closeOptions: CloseOptions = {
    ...(rtol !== undefined ? { rtol, atol } : {}),
    equalNan: Boolean(options.equalNan),
    checkDtype: !options.ignoreDtype,
  };
  const inputs = await readingInput('--inputs', async () =>
    positionalInputs(await readTensors(inputsFile), inputsFile),
  );
  const expected = await readingInput('--expected', () => readTensors(expectedFile));
  const model = await openModel(file, options);
  let actual: Value;
  try {
    actual = await model.forward(inputs.length === 1 ? inputs[0] : inputs);
  } finally {
    await model.dispose();
  }
  const message = closeMismatch(actual, expected, closeOptions, 'vbp check');
  const outputs: OutputRow[] = [];
  rows(actual, expected, closeOptions, '', outputs);
  const pass = message === undefined;
  const human = [
    `${file} on ${inputs.length} input${inputs.length === 1 ? '' : 's'} from ${inputsFile}, compared with ${expectedFile}:`,
    table(
      ['output', 'shape', 'dtype', 'mismatched', 'max |diff|', 'rtol', 'atol', ''],
      outputs.map((r) =>
        r.problem
          ? [r.path, `[${r.shape.join(', ')}]`, r.dtype, '-', '-', '-', '-', 'FAIL (below)']
          : [
              r.path,
              `[${r.shape.join(', ')}]`,
              r.dtype,
              `${r.mismatches} / ${r.total}`,
              pyFloat(r.maxAbsDiff),
              pyFloat(r.rtol),
              pyFloat(r.atol),
              r.pass ? 'ok' : 'FAIL',
            ],
      ),
    ),
    ...problemLines(outputs),
    pass ? "PASS: the outputs match PyTorch's" : `FAIL: the outputs do not match PyTorch's\n\n${message}`,
  ].join('\n');
  print(options, human, {
    model: file,
    inputs: inputsFile,
    expected: expectedFile,
    pass,
    outputs,
    message: message ?? null,
  });
  if (!pass) throw new ExitWith(1);
}

export function registerCheck(program: Command, run: Run): void {
  withCommon(program.command('check').argument('<model>', 'TorchScript model file'))
    .description("run a model on inputs saved by PyTorch and compare with PyTorch's saved outputs (exit 1 on mismatch)")
    .requiredOption(
      '--inputs <file>',
      'inputs (torch.save or .npy): a tensor, or a list/tuple of tensors for positional inputs',
    )
    .requiredOption(
      '--expected <file>',
      "PyTorch's outputs for those inputs (torch.save: a tensor, tuple, list or dict; or .npy, .npz, .safetensors)",
    )
    .option('--rtol <x>', 'relative tolerance (with --atol; default: by dtype, as torch.testing.assert_close)')
    .option('--atol <x>', 'absolute tolerance (with --rtol)')
    .option('--equal-nan', 'NaN equals NaN')
    .option('--ignore-dtype', 'compare values of different dtypes (promoted) instead of failing')
    .action((model: string, options: CheckCommandOptions) => run(options, () => check(model, options)));
}
