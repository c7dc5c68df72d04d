/**
 * assertClose and isClose (lib/testing/assert-close.ts) decide and report as torch.testing.assert_close and
 * torch.isclose: on at least 500 generated tensor pairs and on what is not a pair of tensors (None, numbers,
 * strings, structures), message for message. Everything PyTorch decides comes from
 * test/python/testing_corpus.py, run here.
 */
import path from 'node:path';
import assert from 'node:assert';
import { assertClose, isClose, readTensors, type Tensor, type Value, type CloseOptions } from '../../lib';
import { runPython, tempDir } from '../helpers';

const dir = tempDir('torch-vbp-assert-close-');
beforeAll(() => {
  for (const command of ['closeness', 'others']) runPython('testing_corpus.py', [command, dir]);
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
