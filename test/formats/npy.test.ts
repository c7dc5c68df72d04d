/**
 * .npy files read as np.load reads them (issue 21 part D, items 15 and 16). test/python/npy_cases.py writes
 * files with np.save (every dtype, big-endian, Fortran order, versions 2.0 and 3.0) and hand-made headers
 * after NumPy's test_format.py, and records what np.load (numpy 1.24, Debian's Python) makes of each. Where
 * numpy reads a file, readTensors reads the same values in C order, bit for bit, or refuses with DATA one
 * of the documented kinds (dtypes a typed array cannot hold, platform-dependent spellings, negative
 * dimensions); where numpy refuses a file, readTensors fails with DATA naming the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readTensors, writeTensors, parseNpy, VbpError, type Tensor } from '../../lib';
import { readNpyShape } from '../../lib/formats/npy';
import { runPython, tempDir } from '../helpers';

interface Case {
  name: string;
  file: string;
  ok: boolean;
  dtype?: string;
  kind?: string;
  shape?: number[];
  hex?: string | null;
  error?: string;
}

const dir = tempDir('torch-vbp-npy-');
let cases: Case[];

beforeAll(() => {
  runPython('npy_cases.py', [dir]);
  cases = (JSON.parse(fs.readFileSync(path.join(dir, 'npy-cases.json'), 'utf8')) as { cases: Case[] }).cases;
});

const DTYPE_OF: Record<string, string> = {
  f2: 'float16',
  f4: 'float32',
  f8: 'float64',
  i1: 'int8',
  i2: 'int16',
  i4: 'int32',
  i8: 'int64',
  u1: 'uint8',
  u2: 'uint16',
  u4: 'uint32',
  u8: 'uint64',
  b1: 'bool',
};

/** What numpy reads but torch-vbp refuses, by design (the README lists them). */
function refusedByDesign(c: Case): RegExp | undefined {
  const code = (c.dtype ?? '').slice(1);
  if (!DTYPE_OF[code]) return /is not read: the dtypes read are|structured dtype/;
  if (/^descr '(l|L|p|P|int|uint|intp|uintp|int_|long)'$/.test(c.name)) return /depends on the platform/;
  if (/^shape negative/.test(c.name)) return /negative dimension/;
  if (/^descr '(<f8,|1<f8|f 8)'$/.test(c.name)) return /is not read: the dtypes read are/; // np.dtype's comma lists, repeat counts, spaces
  if (c.name === 'a \\N escape') return /a \\N\{\.\.\.\} escape, which is not read/;
  return undefined;
}

async function outcome(file: string): Promise<{ value?: Tensor; error?: VbpError }> {
  try {
    return { value: (await readTensors(file)) as Tensor };
  } catch (error) {
    if (!(error instanceof VbpError)) throw error;
    return { error };
  }
}

describe('.npy files against np.load', () => {
  it('the cases cover both verdicts', () => {
    expect(cases.length).toBeGreaterThanOrEqual(250);
    expect(cases.filter((c) => c.ok).length).toBeGreaterThanOrEqual(150);
    expect(cases.filter((c) => !c.ok).length).toBeGreaterThanOrEqual(60);
  });

  it('reads every file numpy reads, in C order and bit for bit, or refuses the documented kinds', async () => {
    const wrong: unknown[] = [];
    for (const c of cases.filter((x) => x.ok)) {
      const got = await outcome(c.file);
      const design = refusedByDesign(c);
      if (design) {
        if (
          !got.error ||
          got.error.code !== 'DATA' ||
          !design.test(got.error.message) ||
          !got.error.message.includes(c.file)
        )
          wrong.push({ case: c.name, numpy: c.dtype, got: got.error?.message ?? 'read' });
        continue;
      }
      if (!got.value) {
        wrong.push({ case: c.name, numpy: `${c.dtype} [${c.shape}]`, refused: got.error?.message });
        continue;
      }
      const t = got.value;
      const hex = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex');
      const expected = { dtype: DTYPE_OF[(c.dtype as string).slice(1)], shape: c.shape, hex: c.hex };
      const actual = { dtype: t.dtype, shape: t.shape, hex };
      if (JSON.stringify(actual) !== JSON.stringify(expected)) wrong.push({ case: c.name, actual, expected });
    }
    expect(wrong).toEqual([]);
  });

  it('refuses every file numpy refuses, with DATA naming the file', async () => {
    const wrong: unknown[] = [];
    for (const c of cases.filter((x) => !x.ok)) {
      const got = await outcome(c.file);
      if (!got.error) wrong.push({ case: c.name, numpy: c.error, read: `${got.value?.dtype} [${got.value?.shape}]` });
      else if (got.error.code !== 'DATA' || !got.error.message.includes(c.file))
        wrong.push({ case: c.name, message: got.error.message });
    }
    expect(wrong).toEqual([]);
  });

  it('names what was expected and what was found', async () => {
    const message = async (name: string): Promise<string> =>
      (await outcome(cases.find((c) => c.name === name)!.file)).error?.message ?? 'read';
    expect(await message('version 1.1')).toMatch(
      /format version 1\.1 is not supported \(np\.load reads 1\.0, 2\.0 and 3\.0\)/,
    );
    expect(await message('header is a list')).toMatch(/header is \['descr', '<f8'\], not a dictionary/);
    expect(await message('extra key')).toMatch(
      /header has the keys 'descr', 'fortran_order', 'shape', 'x', expected exactly 'descr', 'fortran_order' and 'shape'/,
    );
    expect(await message('missing closing brace')).toMatch(/cannot parse header .*a bracket that is not closed/);
    expect(await message('shape a float')).toMatch(/shape is \(a float, 3\), not a tuple of ints/);
    expect(await message('fortran_order 0')).toMatch(/fortran_order is 0, not a bool/);
    expect(await message('one byte short')).toMatch(/shape \[2, 3\] of <f8 needs 48 bytes, the file has 47/);
    expect(await message("descr '<c8'")).toMatch(/descr '<c8' \(complex numbers\) is not read/);
    expect(await message("descr 'l'")).toMatch(/descr 'l' has a size that depends on the platform/);
  });

  it('with duplicate keys the last counts, as in numpy (descr <i8 then <f8 is float64)', async () => {
    const t = (await readTensors(
      cases.find((c) => c.name === 'duplicate descr <i8 then <f8 (last wins)')!.file,
    )) as Tensor;
    expect(t.dtype).toBe('float64');
    expect(Array.from(t.data as Float64Array)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('turns Fortran order into C order and big-endian data into native numbers', async () => {
    const fortran = (await readTensors(cases.find((c) => c.name === 'np.save 3-D Fortran')!.file)) as Tensor;
    expect(fortran.shape).toEqual([2, 3, 4]);
    expect(Array.from(fortran.data as Int32Array)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    const big = (await readTensors(cases.find((c) => c.name === "descr '>i4'")!.file)) as Tensor;
    expect(big.dtype).toBe('int32');
    expect((big.data as Int32Array)[0]).toBe(0x00010203);
    const bools = (await readTensors(
      cases.find((c) => c.name === 'np.save bool with values 2 and 255')!.file,
    )) as Tensor;
    expect(Array.from(bools.data as Uint8Array)).toEqual([0, 1, 1, 1]);
  });

  it('readNpyShape reads the shape of the same headers', () => {
    const c = cases.find((x) => x.name === 'shape Python 2 longs')!;
    expect(readNpyShape(c.file)).toEqual([2, 3]);
    expect(() => readNpyShape(cases.find((x) => x.name === 'header is a str')!.file)).toThrow(
      expect.objectContaining({ code: 'DATA' }),
    );
  });

  it('writes uint16/32/64 that numpy reads back, and refuses bfloat16 and float8', async () => {
    const value: Record<string, Tensor> = {
      u16: { data: new Uint16Array([1, 65535]), shape: [2], dtype: 'uint16' },
      u32: { data: new Uint32Array([1, 4294967295]), shape: [2] },
      u64: { data: new BigUint64Array([1n, 18446744073709551615n]), shape: [2] },
    };
    for (const [name, t] of Object.entries(value)) {
      await writeTensors(path.join(dir, `${name}.npy`), t);
      expect(parseNpy(fs.readFileSync(path.join(dir, `${name}.npy`)))).toEqual({
        ...t,
        dtype: t.dtype ?? name.replace('u', 'uint'),
      });
    }
    const numpy = JSON.parse(
      runPython('npy_cases.py', ['describe', ...Object.keys(value).map((n) => path.join(dir, `${n}.npy`))]),
    ) as Case[];
    expect(numpy.map((c) => [c.dtype, c.shape, c.hex])).toEqual([
      ['<u2', [2], '0100ffff'],
      ['<u4', [2], '01000000ffffffff'],
      ['<u8', [2], '0100000000000000ffffffffffffffff'],
    ]);
    await expect(
      writeTensors(path.join(dir, 'b.npy'), { data: new Uint16Array(1), shape: [1], dtype: 'bfloat16' }),
    ).rejects.toMatchObject({ code: 'INPUT_DTYPE' });
    await expect(
      writeTensors(path.join(dir, 'f8.npy'), { data: new Uint8Array(1), shape: [1], dtype: 'float8_e4m3fn' }),
    ).rejects.toMatchObject({ code: 'INPUT_DTYPE' });
  });
});
