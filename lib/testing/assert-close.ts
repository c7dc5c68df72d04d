/**
 * assertClose / isClose: torch.testing.assert_close's semantics (PyTorch 1.13) for our values.
 *
 * Per element: close when actual == expected, or both NaN with equalNan, or |a - e| <= atol + rtol * |e|
 * (finite). Floating-point tensors compare in float64, integer and bool tensors as int64 (exactly, unless
 * tolerances are given: then, as in torch.isclose, the allowed error is computed in float32). Shapes must be
 * equal (no broadcasting) and, with checkDtype (default), dtypes too. Default tolerances by dtype: the
 * loosest of the two inputs' (float16 1e-3/1e-5, bfloat16 1.6e-2/1e-5, float32 1.3e-6/1e-5, float64
 * 1e-7/1e-7, integers and bool 0/0). Arrays and objects compare element by element; a failure names the
 * path of the item, as PyTorch does.
 */
import { AssertionError } from 'node:assert';
import { VbpError } from '../errors';
import { isTensor, type DType, type Tensor, type Value } from '../tensor';
import { checkTensor } from '../formats/torch-save';
import { checkOptionKeys } from '../util/options';

export interface CloseOptions {
  /** Relative tolerance; give both rtol and atol, or neither (the defaults of the dtypes). */
  rtol?: number;
  /** Absolute tolerance; give both rtol and atol, or neither. */
  atol?: number;
  /** NaN equals NaN (default false). */
  equalNan?: boolean;
  /** Tensors of different dtypes fail (default true); without, they are promoted as torch.promote_types does. */
  checkDtype?: boolean;
}

const OPTION_KEYS = ['rtol', 'atol', 'equalNan', 'checkDtype'] as const;

/** torch.testing's default (rtol, atol) by dtype. */
export const DEFAULT_TOLERANCES: Record<DType, { rtol: number; atol: number }> = {
  float16: { rtol: 1e-3, atol: 1e-5 },
  bfloat16: { rtol: 1.6e-2, atol: 1e-5 },
  float32: { rtol: 1.3e-6, atol: 1e-5 },
  float64: { rtol: 1e-7, atol: 1e-7 },
  int64: { rtol: 0, atol: 0 },
  int32: { rtol: 0, atol: 0 },
  int16: { rtol: 0, atol: 0 },
  int8: { rtol: 0, atol: 0 },
  uint8: { rtol: 0, atol: 0 },
  bool: { rtol: 0, atol: 0 },
  uint16: { rtol: 0, atol: 0 },
  uint32: { rtol: 0, atol: 0 },
  uint64: { rtol: 0, atol: 0 },
  float8_e4m3fn: { rtol: 0, atol: 0 },
  float8_e5m2: { rtol: 0, atol: 0 },
  float8_e4m3fnuz: { rtol: 0, atol: 0 },
  float8_e5m2fnuz: { rtol: 0, atol: 0 },
  float8_e8m0fnu: { rtol: 0, atol: 0 },
};

const FLOATS: DType[] = ['float16', 'bfloat16', 'float32', 'float64'];
const isFloat = (d: DType): boolean => FLOATS.includes(d);

// ------------------------------------------------------------------------------------ numbers

const scratch = new DataView(new ArrayBuffer(4));

function halfToNumber(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function bfloat16ToNumber(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

/** Rounds a finite float32 value to the nearest (ties to even) value with `mantissaBits` bits, as c10 does. */
function roundToFloat(x: number, mantissaBits: number, minExponent: number, overflowAt: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= overflowAt) return Math.sign(x) * Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (Math.max(e, minExponent) - mantissaBits);
  const q = a / quantum;
  let r = Math.floor(q);
  if (q - r > 0.5 || (q - r === 0.5 && r % 2 === 1)) r++;
  return Math.sign(x) * r * quantum;
}

/** A value converted to `dtype` (c10's conversion: through float32, rounding to nearest even). */
function convertFloat(x: number, dtype: DType): number {
  if (dtype === 'float64') return x;
  const f = Math.fround(x);
  if (dtype === 'float32') return f;
  if (dtype === 'float16') return roundToFloat(f, 10, -14, 65520);
  return roundToFloat(f, 7, -126, (2 - 2 ** -8) * 2 ** 127);
}

/** Element `i` of a tensor as a number (float16 and bfloat16 decoded, int64 rounded to a double). */
export function elementValue(t: Tensor, dtype: DType, i: number): number {
  const v = t.data[i];
  if (dtype === 'float16') return halfToNumber(v as number);
  if (dtype === 'bfloat16') return bfloat16ToNumber(v as number);
  return Number(v);
}

/** The elements of a floating-point tensor as float64 numbers. */
function floatValues(t: Tensor, dtype: DType): Float64Array {
  const out = new Float64Array(t.data.length);
  if (dtype === 'float16') for (let i = 0; i < out.length; i++) out[i] = halfToNumber((t.data as Uint16Array)[i]);
  else if (dtype === 'bfloat16') for (let i = 0; i < out.length; i++) out[i] = bfloat16ToNumber((t.data as Uint16Array)[i]);
  else if (dtype === 'int64') for (let i = 0; i < out.length; i++) out[i] = Number((t.data as BigInt64Array)[i]);
  else for (let i = 0; i < out.length; i++) out[i] = (t.data as Float32Array)[i];
  return out;
}

/** The elements of an integer or bool tensor as int64 (bigint). */
function intValues(t: Tensor, dtype: DType): BigInt64Array {
  if (dtype === 'int64') return t.data as BigInt64Array;
  const out = new BigInt64Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = BigInt((t.data as Int32Array)[i]);
  return out;
}

/** torch.promote_types for our dtypes. */
function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  if (isFloat(a) && isFloat(b)) {
    if (a === 'float64' || b === 'float64') return 'float64';
    return 'float32'; // float32 with a 16-bit type, or float16 with bfloat16
  }
  if (isFloat(a)) return a;
  if (isFloat(b)) return b;
  return 'int64'; // integers and bools compare as int64 whatever their promotion
}

// ------------------------------------------------------------------------------------ Python-style text

/** Python's repr of a float. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = x.toExponential().split('e');
  const exponent = Number(exp);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  let text: string;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) text = `0.${'0'.repeat(-exponent - 1)}${digits}`;
    else if (digits.length <= exponent + 1) text = `${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`;
    else text = `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    text = `${m}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return negative ? `-${text}` : text;
}

function pyStr(s: string): string {
  if (s.includes("'") && !s.includes('"')) return `"${s.replace(/\\/g, '\\\\')}"`;
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function pyTuple(index: number[]): string {
  return index.length === 1 ? `(${index[0]},)` : `(${index.join(', ')})`;
}

function pySize(shape: number[]): string {
  return `torch.Size([${shape.join(', ')}])`;
}

/** Python's '{:.1%}'. */
function pyPercent(share: number): string {
  const v = share * 100;
  const tenths = v * 10;
  if (Number.isInteger(tenths * 2) && !Number.isInteger(tenths)) {
    const down = Math.floor(tenths);
    return `${((down % 2 === 0 ? down : down + 1) / 10).toFixed(1)}%`;
  }
  return `${v.toFixed(1)}%`;
}

function unravel(flat: number, shape: number[]): number[] {
  const index: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    index.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return index;
}

// ------------------------------------------------------------------------------------ comparison

interface Tolerances {
  rtol: number;
  atol: number;
  equalNan: boolean;
  checkDtype: boolean;
  given: boolean;
}

function resolveOptions(options: CloseOptions | undefined, where: string): Tolerances {
  checkOptionKeys(options, OPTION_KEYS, where);
  const o = options ?? {};
  if ((o.rtol === undefined) !== (o.atol === undefined)) {
    throw new VbpError('INVALID_ARGUMENT', `${where}: both 'rtol' and 'atol' must be either specified or omitted, but got no ${o.rtol === undefined ? 'rtol' : 'atol'}`);
  }
  for (const key of ['rtol', 'atol'] as const) {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new VbpError('INVALID_ARGUMENT', `${where}: ${key} must be a finite number >= 0`);
  }
  for (const key of ['equalNan', 'checkDtype'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new VbpError('INVALID_ARGUMENT', `${where}: ${key} must be true or false`);
  }
  return { rtol: o.rtol ?? 0, atol: o.atol ?? 0, equalNan: o.equalNan ?? false, checkDtype: o.checkDtype ?? true, given: o.rtol !== undefined };
}

/** The outcome of comparing two tensors. */
export interface TensorComparison {
  /** 1 where the elements are close. */
  mask: Uint8Array;
  mismatches: number;
  total: number;
  rtol: number;
  atol: number;
  /** Greatest absolute and relative difference among the mismatched elements (0 when there are none). */
  maxAbsDiff: number | bigint;
  maxAbsIndex: number[];
  maxRelDiff: number;
  maxRelIndex: number[];
  /** Greatest |actual - expected| over all elements (NaN when a NaN differs), matched or not. */
  worstAbsDiff: number;
  /** torch.testing's message when the tensors are not close. */
  message?: string;
}

class Mismatch extends Error {}

function compareTensors(actual: Tensor, expected: Tensor, t: Tolerances): TensorComparison {
  const ad = checkTensor(actual, 'actual');
  const ed = checkTensor(expected, 'expected');
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    throw new Mismatch(`The values for attribute 'shape' do not match: ${pySize(actual.shape)} != ${pySize(expected.shape)}.`);
  }
  if (t.checkDtype && ad !== ed) throw new Mismatch(`The values for attribute 'dtype' do not match: torch.${ad} != torch.${ed}.`);
  const rtol = t.given ? t.rtol : Math.max(DEFAULT_TOLERANCES[ad].rtol, DEFAULT_TOLERANCES[ed].rtol);
  const atol = t.given ? t.atol : Math.max(DEFAULT_TOLERANCES[ad].atol, DEFAULT_TOLERANCES[ed].atol);
  const promoted = promoteTypes(ad, ed);
  const n = actual.data.length;
  const mask = new Uint8Array(n);
  const exact = rtol === 0 && atol === 0;
  let mismatches = 0;
  let maxAbs: number | bigint = isFloat(promoted) ? 0 : 0n;
  let maxAbsAt = 0;
  let maxRel = 0;
  let maxRelAt = 0;
  // torch.max: the first NaN, else the first greatest.
  const greater = (v: number, best: number): boolean => (Number.isNaN(v) ? !Number.isNaN(best) : !Number.isNaN(best) && v > best);
  let worst = 0;
  let scalar: { abs: number | bigint; rel: number } | undefined;
  if (isFloat(promoted)) {
    const convert = (values: Float64Array, from: DType): Float64Array => (from === promoted || isFloat(from) ? values : values.map((v) => convertFloat(v, promoted)));
    const a = convert(floatValues(actual, ad), ad);
    const e = convert(floatValues(expected, ed), ed);
    for (let i = 0; i < n; i++) {
      let close = a[i] === e[i] || (t.equalNan && Number.isNaN(a[i]) && Number.isNaN(e[i]));
      const diff = Math.abs(a[i] - e[i]);
      if (!close && !exact) close = Number.isFinite(diff) && diff <= atol + Math.abs(rtol * e[i]);
      mask[i] = close ? 1 : 0;
      if (a[i] !== e[i] && !(Number.isNaN(a[i]) && Number.isNaN(e[i])) && greater(diff, worst)) worst = diff;
      if (close) continue;
      mismatches++;
      const rel = diff / Math.abs(e[i]);
      if (greater(diff, maxAbs as number)) [maxAbs, maxAbsAt] = [diff, i];
      if (greater(rel, maxRel)) [maxRel, maxRelAt] = [rel, i];
      if (n === 1 && actual.shape.length === 0) scalar = { abs: diff, rel: e[i] === 0 ? Infinity : diff / Math.abs(e[i]) };
    }
  } else {
    const a = intValues(actual, ad);
    const e = intValues(expected, ed);
    // torch.isclose on int64 with tolerances: the allowed error is a float32 tensor.
    const rtol32 = Math.fround(rtol);
    const atol32 = Math.fround(atol);
    for (let i = 0; i < n; i++) {
      let close = a[i] === e[i];
      const wrapped = BigInt.asIntN(64, a[i] - e[i]);
      const diff = BigInt.asIntN(64, wrapped < 0n ? -wrapped : wrapped);
      if (!close && !exact) {
        const allowed = Math.fround(atol32 + Math.fround(Math.abs(Math.fround(rtol32 * Math.fround(Number(e[i]))))));
        close = Math.fround(Number(diff)) <= allowed;
      }
      mask[i] = close ? 1 : 0;
      if (Number(diff) > worst) worst = Number(diff);
      if (close) continue;
      mismatches++;
      const magnitude = e[i] < 0n ? -e[i] : e[i];
      const rel = Math.fround(Math.fround(Number(diff)) / Math.fround(Number(BigInt.asIntN(64, magnitude))));
      if (diff > (maxAbs as bigint)) [maxAbs, maxAbsAt] = [diff, i];
      if (greater(rel, maxRel)) [maxRel, maxRelAt] = [rel, i];
      if (n === 1 && actual.shape.length === 0) scalar = { abs: diff, rel: e[i] === 0n ? Infinity : Number(diff) / Number(magnitude) };
    }
  }
  const result: TensorComparison = {
    mask,
    mismatches,
    total: n,
    rtol,
    atol,
    maxAbsDiff: maxAbs,
    maxAbsIndex: unravel(maxAbsAt, actual.shape),
    maxRelDiff: maxRel,
    maxRelIndex: unravel(maxRelAt, actual.shape),
    worstAbsDiff: worst,
  };
  if (mismatches > 0) {
    const number = (v: number | bigint): string => (typeof v === 'bigint' ? String(v) : pyFloat(v));
    const tol = (_: string, v: number): string => (exact ? '' : ` (up to ${pyFloat(v)} allowed)`);
    const head = `${scalar ? 'Scalars' : 'Tensor-likes'} are not ${exact ? 'equal' : 'close'}!\n\n`;
    if (scalar) {
      result.message = `${head}Absolute difference: ${number(scalar.abs)}${tol('a', atol)}\nRelative difference: ${pyFloat(scalar.rel)}${tol('r', rtol)}`;
    } else {
      result.message =
        `${head}Mismatched elements: ${mismatches} / ${n} (${pyPercent(mismatches / n)})\n` +
        `Greatest absolute difference: ${number(maxAbs)} at index ${pyTuple(result.maxAbsIndex)}${tol('a', atol)}\n` +
        `Greatest relative difference: ${pyFloat(maxRel)} at index ${pyTuple(result.maxRelIndex)}${tol('r', rtol)}`;
    }
  }
  return result;
}

type Path = Array<string | number>;

interface Pair {
  actual: Value;
  expected: Value;
  path: Path;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (isTensor(v)) return 'Tensor';
  if (Array.isArray(v)) return 'Array';
  return typeof v === 'object' ? 'Object' : typeof v;
}

function pyList(keys: string[]): string {
  return `[${keys.map(pyStr).join(', ')}]`;
}

/** Walks both structures as torch.testing does (sorted keys), returning the pairs to compare. */
function originatePairs(actual: Value, expected: Value, path: Path, out: Pair[], depth = 0): void {
  if (depth > 1000) throw new Mismatch('The values nest deeper than 1000 levels');
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length) throw new Mismatch(`The length of the sequences mismatch: ${actual.length} != ${expected.length}`, { cause: path });
    actual.forEach((item, i) => originatePairs(item, expected[i], [...path, i], out, depth + 1));
    return;
  }
  const isMapping = (v: Value): v is { [key: string]: Value } => typeof v === 'object' && v !== null && !Array.isArray(v) && !isTensor(v);
  if (isMapping(actual) && isMapping(expected)) {
    const a = Object.keys(actual);
    const e = Object.keys(expected);
    const missing = e.filter((k) => !Object.prototype.hasOwnProperty.call(actual, k)).sort();
    const additional = a.filter((k) => !Object.prototype.hasOwnProperty.call(expected, k)).sort();
    if (missing.length || additional.length) {
      throw new Mismatch(
        `The keys of the mappings do not match:\nMissing keys in the actual mapping: ${pyList(missing)}\nAdditional keys in the actual mapping: ${pyList(additional)}`,
        { cause: path },
      );
    }
    for (const key of [...a].sort()) originatePairs(actual[key], expected[key], [...path, key], out, depth + 1);
    return;
  }
  const kind = (v: Value): string => (isTensor(v) ? 'tensor' : v === null || v === undefined ? 'none' : typeof v);
  if (kind(actual) !== kind(expected) || kind(actual) === 'object') {
    throw new Mismatch(`No comparison pair was able to handle inputs of type ${typeName(actual)} and ${typeName(expected)}.`, { cause: path });
  }
  out.push({ actual, expected, path });
}

function comparePair(pair: Pair, t: Tolerances): void {
  const { actual, expected } = pair;
  if (isTensor(actual)) {
    const result = compareTensors(actual, expected as Tensor, t);
    if (result.message) throw new Mismatch(result.message);
    return;
  }
  if (typeof actual === 'number') {
    const e = expected as number;
    const integers = Number.isInteger(actual) && Number.isInteger(e);
    const rtol = t.given ? t.rtol : integers ? 0 : 1e-7;
    const atol = t.given ? t.atol : integers ? 0 : 1e-7;
    let close = actual === e || (t.equalNan && Number.isNaN(actual) && Number.isNaN(e));
    const diff = Math.abs(actual - e);
    if (!close && !(rtol === 0 && atol === 0)) close = Number.isFinite(diff) && diff <= atol + Math.abs(rtol * e);
    if (close) return;
    const exact = rtol === 0 && atol === 0;
    const show = (v: number): string => (Number.isInteger(v) && integers ? String(v) : pyFloat(v));
    throw new Mismatch(
      `Scalars are not ${exact ? 'equal' : 'close'}!\n\nAbsolute difference: ${show(diff)}${exact ? '' : ` (up to ${pyFloat(atol)} allowed)`}\n` +
        `Relative difference: ${pyFloat(e === 0 ? Infinity : diff / Math.abs(e))}${exact ? '' : ` (up to ${pyFloat(rtol)} allowed)`}`,
    );
  }
  if (typeof actual === 'boolean') {
    if (actual !== expected) throw new Mismatch(`Booleans mismatch: ${actual ? 'True' : 'False'} is not ${expected ? 'True' : 'False'}`);
    return;
  }
  if (typeof actual === 'string') {
    if (actual !== expected) throw new Mismatch(`Strings mismatch: ${pyStr(actual)} != ${pyStr(expected as string)}`);
  }
}

function withPath(message: string, path: Path): string {
  if (!path.length) return message;
  return `${message}\n\nThe failure occurred for item ${path.map((p) => `[${typeof p === 'number' ? p : pyStr(p)}]`).join('')}`;
}

/**
 * The failure message torch.testing.assert_close would give for these values, or undefined when they are
 * close. Throws VbpError for bad options or malformed tensors.
 */
export function closeMismatch(actual: Value, expected: Value, options?: CloseOptions, where = 'assertClose'): string | undefined {
  const t = resolveOptions(options, where);
  const pairs: Pair[] = [];
  try {
    originatePairs(actual, expected, [], pairs);
  } catch (error) {
    if (error instanceof Mismatch) return withPath(error.message, (error.cause as Path | undefined) ?? []);
    throw error;
  }
  for (const pair of pairs) {
    try {
      comparePair(pair, t);
    } catch (error) {
      if (error instanceof Mismatch) return withPath(error.message, pair.path);
      throw error;
    }
  }
  return undefined;
}

/**
 * Throws node's assert.AssertionError unless `actual` and `expected` are close, with torch.testing's message:
 * mismatched elements (count and share), the greatest absolute and relative differences with their indices,
 * and the tolerances used; for structures, the path of the failing item.
 */
export function assertClose(actual: Value, expected: Value, options?: CloseOptions): void {
  const message = closeMismatch(actual, expected, options);
  if (message !== undefined) {
    const error = new AssertionError({ message, actual, expected, operator: 'assertClose' });
    Error.captureStackTrace?.(error, assertClose);
    throw error;
  }
}

/**
 * The element-wise mask of assertClose (a bool tensor of the common shape), without throwing on a mismatch:
 * torch.isclose on the inputs promoted as assert_close promotes them, with assert_close's default
 * tolerances. Different shapes fail with INPUT_SHAPE, different dtypes (with checkDtype) with INPUT_DTYPE.
 */
export function isClose(actual: Tensor, expected: Tensor, options?: CloseOptions): Tensor<Uint8Array> {
  const t = resolveOptions(options, 'isClose');
  if (!isTensor(actual) || !isTensor(expected)) throw new VbpError('INPUT', 'isClose(actual, expected): both must be tensors { data, shape }');
  try {
    return { data: compareTensors(actual, expected, t).mask, shape: [...actual.shape], dtype: 'bool' };
  } catch (error) {
    if (error instanceof Mismatch) throw new VbpError(error.message.includes("'shape'") ? 'INPUT_SHAPE' : 'INPUT_DTYPE', `isClose: ${error.message}`);
    throw error;
  }
}

/** The comparison figures of two tensors (internal: the CLI's check report). */
export function compareTensorValues(actual: Tensor, expected: Tensor, options?: CloseOptions): TensorComparison {
  try {
    return compareTensors(actual, expected, resolveOptions(options, 'compare'));
  } catch (error) {
    if (error instanceof Mismatch) throw new VbpError('INPUT_SHAPE', error.message);
    throw error;
  }
}
