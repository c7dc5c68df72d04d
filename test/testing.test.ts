/**
 * Testing against PyTorch (issue 14): PyTorch's tensor files read bit-exact and written so that torch.load
 * reads them back bit-exact, pickles that ask to run code refused, assertClose/isClose deciding and
 * reporting as torch.testing.assert_close / torch.isclose on a generated corpus, the jest matcher, node:test,
 * and `vbp check`. Everything PyTorch decides comes from test/python/testing_corpus.py, run here.
 */
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert';
import { spawnSync } from 'node:child_process';
import {
  assertClose,
  isClose,
  isTensor,
  readTensor,
  readTensors,
  writeTensors,
  VbpError,
  type Tensor,
  type Value,
  type CloseOptions,
} from '../lib';
import { matchers } from '../lib/testing/jest';
import { repoRoot, runPython, tempDir, vbp } from './helpers';

expect.extend(matchers);

const dir = tempDir('torch-vbp-testing-');
const marker = path.join(dir, 'MARKER-code-ran');

beforeAll(() => {
  for (const command of ['closeness', 'others', 'files', 'model']) runPython('testing_corpus.py', [command, dir]);
  runPython('testing_corpus.py', ['evil', dir, marker]);
});

async function code(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (error) {
    if (error instanceof VbpError) return error.code;
    throw error;
  }
}

interface ManifestTensor {
  __tensor__: true;
  dtype: string;
  shape: number[];
  hex: string;
}
type Manifest =
  ManifestTensor | Manifest[] | { __dict__: Array<[string, Manifest]> } | number | string | boolean | null;

/** Checks `value` against PyTorch's manifest, bit for bit; returns the paths that differ. */
function differences(value: Value, expected: Manifest, at = ''): string[] {
  if (expected !== null && typeof expected === 'object' && '__tensor__' in expected) {
    if (!isTensor(value)) return [`${at}: not a tensor`];
    const bytes = Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength).toString('hex');
    const same =
      value.dtype === expected.dtype && value.shape.join() === expected.shape.join() && bytes === expected.hex;
    return same ? [] : [`${at}: ${value.dtype} [${value.shape}] differs from ${expected.dtype} [${expected.shape}]`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(value) || value.length !== expected.length) return [`${at}: not a list of ${expected.length}`];
    return expected.flatMap((item, i) => differences(value[i], item, `${at}[${i}]`));
  }
  if (expected !== null && typeof expected === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || isTensor(value))
      return [`${at}: not a dict`];
    const keys = expected.__dict__.map(([k]) => k);
    if (Object.keys(value).join('\n') !== keys.join('\n'))
      return [`${at}: keys ${Object.keys(value)} instead of ${keys}`];
    return expected.__dict__.flatMap(([k, item]) =>
      differences((value as Record<string, Value>)[k], item, `${at}.${k}`),
    );
  }
  return value === expected ? [] : [`${at}: ${String(value)} instead of ${String(expected)}`];
}

describe('reading and writing PyTorch files', () => {
  it('reads at least 100 files made by torch.save and numpy (every structure and dtype) bit-exact', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Array<{
      file: string;
      value: Manifest;
    }>;
    expect(manifest.filter((m) => m.file.endsWith('.pt')).length).toBeGreaterThanOrEqual(100);
    const wrong: string[] = [];
    for (const { file, value } of manifest)
      wrong.push(...differences(await readTensors(file), value, path.basename(file)));
    expect(wrong).toEqual([]);
  });

  it('tensors that share a storage share memory, as in PyTorch', async () => {
    const shared = (await readTensors(path.join(dir, 'files', 'float32-shared.pt'))) as Record<string, Tensor>;
    expect(shared.row.data.buffer).toBe(shared.whole.data.buffer);
    expect(shared.again).toBe(shared.whole);
    shared.whole.data[6] = 42;
    expect(shared.row.data[0]).toBe(42);
  });

  it('writes what it read so that torch.load (and numpy) read it back bit-exact', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Array<{ file: string }>;
    const out = path.join(dir, 'written');
    fs.mkdirSync(out);
    const pairs: Array<[string, string, string | null]> = [];
    for (const { file } of manifest) {
      const value = await readTensors(file);
      const base = path.join(out, path.basename(file));
      const target = file.endsWith('.pt') ? base : `${base}.pt`;
      await writeTensors(target, value);
      pairs.push([file, target, null]);
      if (file.endsWith('.npy') || file.endsWith('.npz')) {
        const ext = path.extname(file);
        await writeTensors(`${base}.again${ext}`, value);
        pairs.push([file, `${base}.again${ext}`, null]);
      }
      if (isTensor(value) && value.dtype !== undefined) {
        await writeTensors(`${base}.safetensors`, { tensor: value });
        pairs.push([file, `${base}.safetensors`, 'tensor']);
      }
    }
    const listing = path.join(dir, 'written.json');
    fs.writeFileSync(listing, JSON.stringify(pairs));
    const results = JSON.parse(runPython('testing_corpus.py', ['check-written', listing])) as Array<{
      written: string;
      equal: boolean;
      weightsOnly: boolean | string | null;
    }>;
    expect(results.length).toBeGreaterThanOrEqual(100);
    expect(results.filter((r) => !r.equal)).toEqual([]);
    // torch.load(weights_only=True) reads them too (PyTorch 1.13's restricted reader knows no float scalars).
    expect(results.filter((r) => r.weightsOnly === false)).toEqual([]);
    expect(results.filter((r) => r.weightsOnly === true).length).toBeGreaterThan(50);
    // and reading what was written gives the same values
    const again = await readTensors(pairs[0][1]);
    expect(differences(again, JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'))[0].value)).toEqual(
      [],
    );
  });

  it('readTensor returns the single tensor, or fails with DATA saying what the file holds', async () => {
    const t = await readTensor(path.join(dir, 'files', 'int64-tensor.pt'));
    expect(t.dtype).toBe('int64');
    expect(t.shape).toEqual([4, 6]);
    expect((await readTensor(path.join(dir, 'files', 'float16.npy'))).dtype).toBe('float16');
    await expect(readTensor(path.join(dir, 'files', 'float32-dict.pt'))).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringMatching(/holds a dict of 3 entries \(zeta, alpha, nested\), not a single tensor/),
    });
    await expect(readTensors(path.join(dir, 'missing.pt'))).rejects.toMatchObject({ code: 'IO' });
    await expect(readTensors(path.join(dir, 'model.pt'))).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringMatching(/TorchScript model/),
    });
  });

  it('writes atomically, refuses values it cannot store and unknown options', async () => {
    const target = path.join(dir, 'refused.npy');
    await expect(writeTensors(target, [{ data: new Float32Array(2), shape: [2] }])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      writeTensors(path.join(dir, 'bad.pt'), { data: new Float32Array(3), shape: [2] }),
    ).rejects.toMatchObject({ code: 'INPUT_SHAPE' });
    await expect(
      writeTensors(path.join(dir, 'half.pt'), { data: new Uint16Array(2), shape: [2] }),
    ).rejects.toMatchObject({ code: 'INPUT_DTYPE' });
    await expect(
      writeTensors(path.join(dir, 'x.pt'), { data: new Float32Array(1), shape: [1] }, {
        overwrite: true,
        atomic: true,
      } as never),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(fs.readdirSync(dir).filter((f) => /refused|bad\.pt|half\.pt|x\.pt|tmp-/.test(f))).toEqual([]);
  });
});

describe('pickles that ask for anything but tensors and containers', () => {
  it.each(['evil-system.pt', 'evil-eval.pt', 'evil-protocol4.pt', 'evil-legacy.pt'])(
    '%s is refused with DATA and nothing runs',
    async (name) => {
      const error = (await readTensors(path.join(dir, name)).catch((e: unknown) => e)) as VbpError;
      expect(error).toBeInstanceOf(VbpError);
      expect(error.code).toBe('DATA');
      expect(error.message).toContain(name);
      if (name !== 'evil-legacy.pt')
        expect(error.message).toMatch(/(posix|builtins|__builtin__)\.(system|eval), which torch-vbp refuses/);
      expect(fs.existsSync(marker)).toBe(false);
    },
  );
});

describe('assertClose and isClose decide and report as torch.testing.assert_close', () => {
  interface Case {
    actual: Value;
    expected: Value;
    rtol?: number;
    atol?: number;
    equal_nan: boolean;
    check_dtype: boolean;
    message: string | null;
    mask: Tensor | null;
  }
  let cases: Case[];
  beforeAll(async () => {
    cases = (await readTensors(path.join(dir, 'closeness.pt'))) as unknown as Case[];
  });
  const optionsOf = (c: Case): CloseOptions => ({
    equalNan: c.equal_nan,
    checkDtype: c.check_dtype,
    ...(c.rtol !== undefined ? { rtol: c.rtol, atol: c.atol } : {}),
  });

  it('on at least 500 generated pairs: the same decision and the same message, figure for figure', () => {
    expect(cases.length).toBeGreaterThanOrEqual(500);
    expect(cases.filter((c) => c.message !== null).length).toBeGreaterThan(200);
    expect(cases.filter((c) => c.message === null).length).toBeGreaterThan(100);
    const wrong: unknown[] = [];
    cases.forEach((c, i) => {
      let message: string | null = null;
      try {
        assertClose(c.actual, c.expected, optionsOf(c));
      } catch (error) {
        expect(error).toBeInstanceOf(assert.AssertionError);
        message = (error as Error).message;
      }
      if (message !== c.message) wrong.push({ case: i, got: message, pytorch: c.message });
    });
    expect(wrong).toEqual([]);
  });

  it("isClose gives torch.isclose's mask on the promoted inputs", () => {
    const withMask = cases.filter((c) => c.mask !== null);
    expect(withMask.length).toBeGreaterThanOrEqual(500);
    const wrong = withMask.filter(
      (c) =>
        !Buffer.from(isClose(c.actual as Tensor, c.expected as Tensor, optionsOf(c)).data).equals(
          Buffer.from((c.mask as Tensor).data as Uint8Array),
        ),
    );
    expect(wrong.length).toBe(0);
  });

  it('refuses broadcasting, different dtypes (by default), lone tolerances and unknown options', () => {
    const a = { data: new Float32Array([1, 2, 3]), shape: [3] };
    const b = { data: new Float32Array([1, 2, 3]), shape: [1, 3] };
    expect(() => assertClose(a, b)).toThrow(
      "The values for attribute 'shape' do not match: torch.Size([3]) != torch.Size([1, 3]).",
    );
    expect(() => assertClose(a, { data: new Float64Array([1, 2, 3]), shape: [3] })).toThrow(
      "The values for attribute 'dtype' do not match: torch.float32 != torch.float64.",
    );
    expect(() => isClose(a, b)).toThrow(expect.objectContaining({ code: 'INPUT_SHAPE' }));
    expect(() => assertClose(a, a, { rtol: 1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => assertClose(a, a, { tolerance: 1 } as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('assertClose on what is not a pair of tensors, None, shares and reprs, as torch.testing.assert_close (issue 21 part D, item 18)', () => {
  interface Other {
    name: string;
    actual: Value;
    expected: Value;
    error: string | null;
    message: string | null;
    equal_nan: boolean;
    check_dtype: boolean;
    rtol?: number;
    atol?: number;
    documented: string | null;
  }
  let others: Other[];
  beforeAll(async () => {
    others = (await readTensors(path.join(dir, 'closeness-others.pt'))) as unknown as Other[];
  });
  const verdict = (c: Other): { error: string | null; message: string | null } => {
    try {
      assertClose(c.actual, c.expected, {
        equalNan: c.equal_nan,
        checkDtype: c.check_dtype,
        ...(c.rtol !== undefined ? { rtol: c.rtol, atol: c.atol } : {}),
      });
      return { error: null, message: null };
    } catch (error) {
      const name =
        error instanceof assert.AssertionError
          ? 'AssertionError'
          : error instanceof TypeError
            ? 'TypeError'
            : String(error);
      return { error: name, message: (error as Error).message };
    }
  };
  /** What we do where a JavaScript value cannot say what PyTorch sees (the README lists these differences). */
  const DOCUMENTED: Record<string, { error: string | null; message: string | null }> = {
    'int 3 vs float 3.0': { error: null, message: null },
    'floats 2.0 vs 3.0': {
      error: 'AssertionError',
      message: 'Scalars are not equal!\n\nAbsolute difference: 1\nRelative difference: 0.3333333333333333',
    },
    'floats 1.0 vs 0.0': {
      error: 'AssertionError',
      message: 'Scalars are not equal!\n\nAbsolute difference: 1\nRelative difference: inf',
    },
    'True vs 1': {
      error: 'TypeError',
      message: "No comparison pair was able to handle inputs of type <class 'bool'> and <class 'int'>.",
    },
  };

  it('the same error (AssertionError or TypeError) and message, character for character, tensor reprs included', () => {
    expect(others.length).toBeGreaterThanOrEqual(120);
    expect(others.filter((c) => c.name.startsWith('repr ')).length).toBeGreaterThanOrEqual(60);
    const wrong: unknown[] = [];
    for (const c of others) {
      const got = verdict(c);
      const expected = c.documented ? DOCUMENTED[c.name] : { error: c.error, message: c.message };
      if (got.error !== expected.error || got.message !== expected.message)
        wrong.push({
          case: c.name,
          got,
          expected,
          pytorch: c.documented ? { error: c.error, message: c.message } : undefined,
        });
    }
    expect(wrong).toEqual([]);
    expect(Object.keys(DOCUMENTED).sort()).toEqual(
      others
        .filter((c) => c.documented)
        .map((c) => c.name)
        .sort(),
    );
  });

  it('the examples of the issue', () => {
    expect(() => assertClose('0', '0')).toThrow(
      new TypeError("No comparison pair was able to handle inputs of type <class 'str'> and <class 'str'>."),
    );
    expect(() => assertClose(3, 3.5)).toThrow("The (d)types do not match: <class 'int'> != <class 'float'>.");
    const expected = { data: new Float32Array(2000), shape: [2000] };
    const actual = { data: new Float32Array(2000).fill(1, 0, 1), shape: [2000] };
    expect(() => assertClose(actual, expected)).toThrow('Mismatched elements: 1 / 2000 (0.1%)');
    expect(() => assertClose(2.5, 3.5)).toThrow('Scalars are not close!');
    expect(() => assertClose({ data: new Float32Array([1, 1]), shape: [2] }, null)).toThrow(
      new assert.AssertionError({ message: 'None mismatch: tensor([1., 1.]) is not None' }),
    );
  });
});

describe('jest and node:test', () => {
  const x = { data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] };
  const y = { data: new Float32Array([1, 2, 3.5, 4]), shape: [2, 2] };

  it('toBeCloseToTensor passes, fails with the message and the mismatched elements, and negates', () => {
    expect(x).toBeCloseToTensor({ data: new Float32Array([1, 2, 3, 4.00001]), shape: [2, 2] });
    expect(x).not.toBeCloseToTensor(y);
    let message = '';
    try {
      expect(x).toBeCloseToTensor(y);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('Mismatched elements: 1 / 4 (25.0%)');
    expect(message).toContain('Greatest absolute difference: 0.5 at index (1, 0) (up to 1e-05 allowed)');
    expect(message).toMatch(/\[1, 0\].*3\.5.*3/);
    expect({ out: [x] }).toBeCloseToTensor({ out: [x] });
  });

  it("assertClose works under node:test (node's AssertionError)", () => {
    const file = path.join(dir, 'node-test.test.js');
    fs.writeFileSync(
      file,
      `const test = require('node:test');\nconst { assertClose } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib'))});\n` +
        `test('close', () => assertClose({ data: new Float32Array([1, 2]), shape: [2] }, { data: new Float32Array([1, 2.000001]), shape: [2] }));\n` +
        `test('not close', () => assertClose({ data: new Float32Array([1, 2]), shape: [2] }, { data: new Float32Array([1, 3]), shape: [2] }));\n`,
    );
    const r = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/# pass 1/);
    expect(r.stdout).toMatch(/# fail 1/);
    expect(r.stdout).toContain('Tensor-likes are not close!');
    expect(r.stdout).toMatch(/ERR_ASSERTION/);
  });
});

describe('vbp check', () => {
  it("passes (exit 0) on PyTorch's outputs, tuple and dict included", () => {
    const r = vbp([
      'check',
      path.join(dir, 'model.pt'),
      '--inputs',
      path.join(dir, 'inputs.pt'),
      '--expected',
      path.join(dir, 'outputs.pt'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("[1]['hidden']");
    expect(r.stdout).toContain('PASS');
  });

  it('fails (exit 1) with the comparison when an output differs, and --json says so', () => {
    const args = [
      'check',
      path.join(dir, 'model.pt'),
      '--inputs',
      path.join(dir, 'inputs.pt'),
      '--expected',
      path.join(dir, 'outputs-wrong.pt'),
    ];
    const r = vbp(args);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('Mismatched elements: 1 / 12');
    expect(r.stdout).toContain('The failure occurred for item [0]');
    const json = vbp([...args, '--json']);
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout) as {
      pass: boolean;
      outputs: Array<{ path: string; pass: boolean; mismatches: number }>;
    };
    expect(report.pass).toBe(false);
    expect(report.outputs.map((o) => [o.path, o.mismatches])).toEqual([
      ['[0]', 1],
      ["[1]['hidden']", 0],
      ["[1]['sum']", 0],
    ]);
    // loose enough tolerances accept the difference
    expect(vbp([...args, '--rtol', '0.1', '--atol', '0.1']).status).toBe(0);
  });

  it('takes a single tensor as the one input and compares a single output', () => {
    const r = vbp([
      'check',
      path.join(dir, 'single.pt'),
      '--inputs',
      path.join(dir, 'single-input.pt'),
      '--expected',
      path.join(dir, 'single-output.pt'),
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      pass: true,
      outputs: [{ path: '(output)', shape: [4, 3], dtype: 'float32' }],
    });
  });
});

describe('what a pickle holds', () => {
  it('keeps the order of a state_dict and reads parameters as tensors', async () => {
    const state = (await readTensors(path.join(dir, 'files', 'float32-state_dict.pt'))) as Record<string, Tensor>;
    expect(Object.keys(state)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']);
    expect(await code(() => readTensor(path.join(dir, 'files', 'float64-parameter.pt')))).toBe('ok');
  });
});
