/**
 * assertClose and isClose on PyTorch >= 2.3's dtypes (issue 23, item 7): uint16/32/64 compared as int64,
 * float8 tensors by value with tolerances 0, as PyTorch 2.13 decides and reports (its verdicts are in the
 * committed corpus, test/python/corpus/torch2, written by test/python/torch2_corpus.py); every float8 bit
 * pattern decoded as PyTorch does (lib/formats/dtypes.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert';
import { readTensors, assertClose, isClose, type Tensor, type CloseOptions } from '../../lib';
import { float8ToNumber } from '../../lib/formats/dtypes';
import { repoRoot } from '../helpers';

const corpus = path.join(repoRoot, 'test', 'python', 'corpus', 'torch2');

describe('assertClose and isClose on the new dtypes, as PyTorch 2.13 decides and reports', () => {
  interface Case {
    actual: Tensor;
    expected: Tensor;
    rtol?: number;
    atol?: number;
    equal_nan: boolean;
    check_dtype: boolean;
    message: string | null;
    mask: Tensor | null;
  }
  let cases: Case[];
  beforeAll(async () => {
    cases = (await readTensors(path.join(corpus, 'closeness.pt'))) as unknown as Case[];
  });
  const optionsOf = (c: Case): CloseOptions => ({
    equalNan: c.equal_nan,
    checkDtype: c.check_dtype,
    ...(c.rtol !== undefined ? { rtol: c.rtol, atol: c.atol } : {}),
  });

  it('the same decision and message (uint16/32/64 as int64, float8 by value with "not \'equal\'"), and the same mask', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    expect(cases.filter((c) => c.message !== null).length).toBeGreaterThan(50);
    const wrong: unknown[] = [];
    for (const [i, c] of cases.entries()) {
      let message: string | null = null;
      try {
        assertClose(c.actual, c.expected, optionsOf(c));
      } catch (error) {
        expect(error).toBeInstanceOf(assert.AssertionError);
        message = (error as Error).message;
      }
      if (message !== c.message)
        wrong.push({ case: i, dtypes: [c.actual.dtype, c.expected.dtype], got: message, pytorch: c.message });
      if (c.mask) {
        const mask = Buffer.from(isClose(c.actual, c.expected, optionsOf(c)).data).toString('hex');
        if (mask !== Buffer.from(c.mask.data as Uint8Array).toString('hex'))
          wrong.push({ case: i, mask, pytorch: Buffer.from(c.mask.data as Uint8Array).toString('hex') });
      }
    }
    expect(wrong).toEqual([]);
  });

  it('float8 against another dtype is INPUT_DTYPE (PyTorch cannot promote float8)', () => {
    const a: Tensor = { data: new Uint8Array([0x38]), shape: [1], dtype: 'float8_e4m3fn' };
    expect(() => assertClose(a, { data: new Float32Array([1]), shape: [1] }, { checkDtype: false })).toThrow(
      expect.objectContaining({ code: 'INPUT_DTYPE' }),
    );
    expect(() =>
      isClose(a, { data: new Uint8Array([0x3c]), shape: [1], dtype: 'float8_e5m2' }, { checkDtype: false }),
    ).toThrow(expect.objectContaining({ code: 'INPUT_DTYPE' }));
  });

  it('decodes every float8 bit pattern as PyTorch does', () => {
    const values = JSON.parse(fs.readFileSync(path.join(corpus, 'float8-values.json'), 'utf8')) as Record<
      string,
      Array<number | string>
    >;
    const wrong: unknown[] = [];
    for (const [dtype, list] of Object.entries(values)) {
      list.forEach((expected, bits) => {
        const got = float8ToNumber(bits, dtype as never);
        const want =
          expected === 'nan'
            ? NaN
            : expected === 'inf'
              ? Infinity
              : expected === '-inf'
                ? -Infinity
                : (expected as number);
        if (!Object.is(got, want)) wrong.push({ dtype, bits, got, want });
      });
    }
    expect(Object.keys(values).length).toBe(5);
    expect(wrong).toEqual([]);
  });
});
