/**
 * assertClose / isClose: torch.testing.assert_close's semantics (PyTorch 1.13) for our values.
 *
 * Per element: close when actual == expected, or both NaN with equalNan, or |a - e| <= atol + rtol * |e|
 * (finite). Floating-point tensors compare in float64, integer and bool tensors as int64 (exactly, unless
 * tolerances are given: then, as in torch.isclose, the allowed error is computed in float32). Shapes must be
 * equal (no broadcasting) and, with checkDtype (default), dtypes too. Default tolerances by dtype: the
 * loosest of the two inputs' (float16 1e-3/1e-5, bfloat16 1.6e-2/1e-5, float32 1.3e-6/1e-5, float64
 * 1e-7/1e-7, integers, bool and float8 0/0). Arrays and objects compare element by element; a failure names the
 * path of the item, as PyTorch does. uint16/32/64 and the float8 kinds (which PyTorch 1.13 lacks) compare as
 * PyTorch >= 2.3 compares them: unsigned integers as int64, float8 tensors by value with tolerances 0 only
 * (PyTorch cannot promote them to another dtype).
 *
 * Values that are not tensors: None against anything but None is PyTorch's "None mismatch: X is not Y"
 * (X and Y printed as Python's str prints them, tensors as torch prints them), booleans compare with
 * booleans, numbers with numbers (a JavaScript number that is a safe integer stands for a Python int, any
 * other for a float), and any other pair, strings included, is PyTorch's TypeError "No comparison pair was
 * able to handle inputs of type <class 'str'> and <class 'str'>." (thrown as a TypeError).
 */
import { AssertionError } from 'node:assert';
import { VbpError } from '../errors';
import { isTensor, type DType, type Tensor, type Value } from '../tensor';
import { checkTensor, elementValue, floatValues, isFloat, isFloat8 } from '../formats/dtypes';
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

// ------------------------------------------------------------------------------------ numbers

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

/** The elements of an integer or bool tensor as int64 (bigint; uint64 wraps, as PyTorch's cast to int64 does). */
function intValues(t: Tensor, dtype: DType): BigInt64Array {
  if (dtype === 'int64') return t.data as BigInt64Array;
  const out = new BigInt64Array(t.data.length);
  if (dtype === 'uint64')
    for (let i = 0; i < out.length; i++) out[i] = BigInt.asIntN(64, (t.data as BigUint64Array)[i]);
  else for (let i = 0; i < out.length; i++) out[i] = BigInt((t.data as Int32Array)[i]);
  return out;
}

/** An integer rounded to float32 (to nearest, ties to even), without double rounding through a double. */
function toFloat32(v: bigint): number {
  const magnitude = v < 0n ? -v : v;
  if (magnitude < 1n << 53n) return Math.fround(Number(v));
  const shift = magnitude.toString(2).length - 24;
  const q = roundHalfEven(magnitude, 1n << BigInt(shift));
  return (v < 0n ? -1 : 1) * Math.fround(Number(q) * 2 ** shift);
}

/** torch.promote_types for our dtypes (uint16/32/64 taken as int64 first, as assert_close does). */
function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  if (isFloat8(a) || isFloat8(b)) {
    throw new VbpError(
      'INPUT_DTYPE',
      `a ${a} tensor cannot be compared with a ${b} tensor: PyTorch does not promote float8 dtypes (compare float8 tensors of one dtype, or convert them)`,
    );
  }
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

/**
 * Python's repr of a str: quotes as Python picks them, backslash escapes for the unprintable (ASCII and C1 controls,
 * line and paragraph separators).
 */
function pyStr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || (code >= 0x7f && code <= 0xa0) || code === 0xad)
      out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code === 0x2028 || code === 0x2029 || (code >= 0xd800 && code <= 0xdfff))
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${quote}${out}${quote}`;
}

function pyTuple(index: number[]): string {
  return index.length === 1 ? `(${index[0]},)` : `(${index.join(', ')})`;
}

function pySize(shape: number[]): string {
  return `torch.Size([${shape.join(', ')}])`;
}

/** |x| as mantissa * 2^exponent (x finite and not 0). */
function decompose(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  const biased = Number(bits >> 52n);
  const fraction = bits & ((1n << 52n) - 1n);
  return biased === 0
    ? { mantissa: fraction, exponent: -1074 }
    : { mantissa: fraction | (1n << 52n), exponent: biased - 1075 };
}

/** n / d rounded half to even (n >= 0, d > 0). */
function roundHalfEven(n: bigint, d: bigint): bigint {
  const q = n / d;
  const twice = 2n * (n % d);
  return twice > d || (twice === d && q % 2n === 1n) ? q + 1n : q;
}

function special(x: number): string | undefined {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return undefined;
}

/** Python's '{:.Nf}'.format(x): the exact value of the double, rounded half to even. */
function pyFixed(x: number, digits: number): string {
  const other = special(x);
  if (other) return other;
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  let q = 0n;
  if (x !== 0) {
    const { mantissa, exponent } = decompose(x);
    const scaled = mantissa * 10n ** BigInt(digits);
    q = exponent >= 0 ? scaled << BigInt(exponent) : roundHalfEven(scaled, 1n << BigInt(-exponent));
  }
  const text = q.toString().padStart(digits + 1, '0');
  return digits === 0
    ? `${sign}${text}`
    : `${sign}${text.slice(0, text.length - digits)}.${text.slice(text.length - digits)}`;
}

/** Python's '{:.Ne}'.format(x), rounded half to even on the exact value. */
function pyExponent(x: number, digits: number): string {
  const other = special(x);
  if (other) return other;
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return `${sign}0${digits ? `.${'0'.repeat(digits)}` : ''}e+00`;
  const { mantissa, exponent } = decompose(x);
  const [num, den] = exponent >= 0 ? [mantissa << BigInt(exponent), 1n] : [mantissa, 1n << BigInt(-exponent)];
  // |x| = num / den; the decimal exponent e with 10^e <= |x| < 10^(e+1)
  const atLeast = (e: number): boolean => (e >= 0 ? num >= den * 10n ** BigInt(e) : num * 10n ** BigInt(-e) >= den);
  let e = Math.floor(Math.log10(Math.abs(x)));
  while (!atLeast(e)) e--;
  while (atLeast(e + 1)) e++;
  const shift = e - digits;
  let q = shift >= 0 ? roundHalfEven(num, den * 10n ** BigInt(shift)) : roundHalfEven(num * 10n ** BigInt(-shift), den);
  if (q >= 10n ** BigInt(digits + 1)) {
    q /= 10n;
    e++;
  }
  const text = q.toString();
  return `${sign}${text[0]}${digits ? `.${text.slice(1)}` : ''}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

/** Python's '{:.1%}': the share times 100 (in double arithmetic, as Python does), to one decimal. */
function pyPercent(share: number): string {
  return `${pyFixed(share * 100, 1)}%`;
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
    throw new VbpError(
      'INVALID_ARGUMENT',
      `${where}: both 'rtol' and 'atol' must be either specified or omitted, but got no ${o.rtol === undefined ? 'rtol' : 'atol'}`,
    );
  }
  for (const key of ['rtol', 'atol'] as const) {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v)))
      throw new VbpError('INVALID_ARGUMENT', `${where}: ${key} must be a finite number >= 0`);
  }
  for (const key of ['equalNan', 'checkDtype'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean')
      throw new VbpError('INVALID_ARGUMENT', `${where}: ${key} must be true or false`);
  }
  return {
    rtol: o.rtol ?? 0,
    atol: o.atol ?? 0,
    equalNan: o.equalNan ?? false,
    checkDtype: o.checkDtype ?? true,
    given: o.rtol !== undefined,
  };
}

/** The outcome of comparing two tensors. */
interface TensorComparison {
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

/** Two tensors checked against each other (shape, dtype) and the tolerances that apply to them. */
interface Pairing {
  actualDtype: DType;
  expectedDtype: DType;
  /** The dtype both compare in (torch.promote_types, integers as int64). */
  promoted: DType;
  rtol: number;
  atol: number;
  /** Tolerances 0: equality. */
  exact: boolean;
}

/** What comparing the elements found: the mask of close ones, and the mismatches' greatest differences. */
interface Tally {
  mask: Uint8Array;
  mismatches: number;
  maxAbs: number | bigint;
  maxAbsAt: number;
  maxRel: number;
  maxRelAt: number;
  firstMismatch: number;
  /** Greatest |actual - expected| over all elements. */
  worst: number;
  /** A 0-dim pair that differs: its absolute and relative difference. */
  scalar?: { abs: number | bigint; rel: number };
}

/** torch.max: the first NaN, else the first greatest. */
function greater(v: number, best: number): boolean {
  return Number.isNaN(v) ? !Number.isNaN(best) : !Number.isNaN(best) && v > best;
}

function emptyTally(n: number, promoted: DType): Tally {
  const maxAbs: number | bigint = isFloat(promoted) ? 0 : 0n;
  return {
    mask: new Uint8Array(n),
    mismatches: 0,
    maxAbs,
    maxAbsAt: 0,
    maxRel: 0,
    maxRelAt: 0,
    firstMismatch: -1,
    worst: 0,
  };
}

/**
 * The checks before any element is compared: shapes equal, dtypes equal (with checkDtype), tolerances a float8 pair
 * allows.
 */
function pairTensors(actual: Tensor, expected: Tensor, t: Tolerances): Pairing {
  const ad = checkTensor(actual, 'actual');
  const ed = checkTensor(expected, 'expected');
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    throw new Mismatch(
      `The values for attribute 'shape' do not match: ${pySize(actual.shape)} != ${pySize(expected.shape)}.`,
    );
  }
  if (t.checkDtype && ad !== ed)
    throw new Mismatch(`The values for attribute 'dtype' do not match: torch.${ad} != torch.${ed}.`);
  const rtol = t.given ? t.rtol : Math.max(DEFAULT_TOLERANCES[ad].rtol, DEFAULT_TOLERANCES[ed].rtol);
  const atol = t.given ? t.atol : Math.max(DEFAULT_TOLERANCES[ad].atol, DEFAULT_TOLERANCES[ed].atol);
  const promoted = promoteTypes(ad, ed);
  if (isFloat8(promoted) && (rtol !== 0 || atol !== 0)) {
    throw new Mismatch(
      `Rtol=${pyFloat(rtol)} and atol=${pyFloat(atol)} are not supported for bitwise comparison of low dimensional floats. Please use rtol=0.0 and atol=0.0.`,
    );
  }
  return { actualDtype: ad, expectedDtype: ed, promoted, rtol, atol, exact: rtol === 0 && atol === 0 };
}

/** Floating-point pairs, in float64 (integers converted to the promoted float type first, as torch does). */
function compareFloats(actual: Tensor, expected: Tensor, pairing: Pairing, equalNan: boolean): Tally {
  const { promoted, rtol, atol, exact } = pairing;
  const convert = (values: Float64Array, from: DType): Float64Array =>
    from === promoted || isFloat(from) ? values : values.map((v) => convertFloat(v, promoted));
  const a = convert(floatValues(actual, pairing.actualDtype), pairing.actualDtype);
  const e = convert(floatValues(expected, pairing.expectedDtype), pairing.expectedDtype);
  const n = a.length;
  const tally = emptyTally(n, promoted);
  for (let i = 0; i < n; i++) {
    let close = a[i] === e[i] || (equalNan && Number.isNaN(a[i]) && Number.isNaN(e[i]));
    const diff = Math.abs(a[i] - e[i]);
    if (!close && !exact) close = Number.isFinite(diff) && diff <= atol + Math.abs(rtol * e[i]);
    tally.mask[i] = close ? 1 : 0;
    if (a[i] !== e[i] && !(Number.isNaN(a[i]) && Number.isNaN(e[i])) && greater(diff, tally.worst)) tally.worst = diff;
    if (close) continue;
    tally.mismatches++;
    if (tally.firstMismatch < 0) tally.firstMismatch = i;
    const rel = diff / Math.abs(e[i]);
    if (greater(diff, tally.maxAbs as number)) [tally.maxAbs, tally.maxAbsAt] = [diff, i];
    if (greater(rel, tally.maxRel)) [tally.maxRel, tally.maxRelAt] = [rel, i];
    if (n === 1 && actual.shape.length === 0)
      tally.scalar = { abs: diff, rel: e[i] === 0 ? Infinity : diff / Math.abs(e[i]) };
  }
  return tally;
}

/**
 * Integer and bool pairs, as int64. torch.isclose on integers with tolerances: both taken as float32 (the
 * default dtype), the errors computed in float32; uint64 against uint64 by its unsigned values. The message's
 * differences are int64.
 */
function compareIntegers(actual: Tensor, expected: Tensor, pairing: Pairing): Tally {
  const a = intValues(actual, pairing.actualDtype);
  const e = intValues(expected, pairing.expectedDtype);
  const rtol32 = Math.fround(pairing.rtol);
  const atol32 = Math.fround(pairing.atol);
  const unsigned = pairing.actualDtype === 'uint64' && pairing.expectedDtype === 'uint64';
  const n = a.length;
  const tally = emptyTally(n, pairing.promoted);
  for (let i = 0; i < n; i++) {
    let close = a[i] === e[i];
    const wrapped = BigInt.asIntN(64, a[i] - e[i]);
    const diff = BigInt.asIntN(64, wrapped < 0n ? -wrapped : wrapped);
    if (!close && !pairing.exact) {
      const a32 = toFloat32(unsigned ? BigInt.asUintN(64, a[i]) : a[i]);
      const e32 = toFloat32(unsigned ? BigInt.asUintN(64, e[i]) : e[i]);
      const allowed = Math.fround(atol32 + Math.fround(Math.abs(Math.fround(rtol32 * e32))));
      close = Math.fround(Math.abs(a32 - e32)) <= allowed;
    }
    tally.mask[i] = close ? 1 : 0;
    if (Number(diff) > tally.worst) tally.worst = Number(diff);
    if (close) continue;
    tally.mismatches++;
    const magnitude = e[i] < 0n ? -e[i] : e[i];
    const rel = Math.fround(Math.fround(Number(diff)) / Math.fround(Number(BigInt.asIntN(64, magnitude))));
    if (diff > (tally.maxAbs as bigint)) [tally.maxAbs, tally.maxAbsAt] = [diff, i];
    if (greater(rel, tally.maxRel)) [tally.maxRel, tally.maxRelAt] = [rel, i];
    if (n === 1 && actual.shape.length === 0)
      tally.scalar = { abs: diff, rel: e[i] === 0n ? Infinity : Number(diff) / Number(magnitude) };
  }
  return tally;
}

/** torch.testing's message for a pair with mismatches (undefined without any). */
function mismatchMessage(tally: Tally, pairing: Pairing, shape: number[]): string | undefined {
  const { mismatches, scalar } = tally;
  if (mismatches === 0) return undefined;
  const { exact, rtol, atol } = pairing;
  const n = tally.mask.length;
  const number = (v: number | bigint): string => (typeof v === 'bigint' ? String(v) : pyFloat(v));
  const tol = (v: number): string => (exact ? '' : ` (up to ${pyFloat(v)} allowed)`);
  const head = `${scalar ? 'Scalars' : 'Tensor-likes'} are not ${exact ? 'equal' : 'close'}!\n\n`;
  if (isFloat8(pairing.promoted) && !scalar) {
    // PyTorch >= 2.3: float8 tensors are compared bit for bit (by value), without differences
    return (
      `Tensor-likes are not 'equal'!\n\nMismatched elements: ${mismatches} / ${n} (${pyPercent(mismatches / n)})\n` +
      `The first mismatched element is at index ${pyTuple(unravel(tally.firstMismatch, shape))}.`
    );
  }
  if (scalar) {
    return `${head}Absolute difference: ${number(scalar.abs)}${tol(atol)}\nRelative difference: ${pyFloat(scalar.rel)}${tol(rtol)}`;
  }
  return (
    `${head}Mismatched elements: ${mismatches} / ${n} (${pyPercent(mismatches / n)})\n` +
    `Greatest absolute difference: ${number(tally.maxAbs)} at index ${pyTuple(unravel(tally.maxAbsAt, shape))}${tol(atol)}\n` +
    `Greatest relative difference: ${pyFloat(tally.maxRel)} at index ${pyTuple(unravel(tally.maxRelAt, shape))}${tol(rtol)}`
  );
}

function compareTensors(actual: Tensor, expected: Tensor, t: Tolerances): TensorComparison {
  const pairing = pairTensors(actual, expected, t);
  const tally = isFloat(pairing.promoted)
    ? compareFloats(actual, expected, pairing, t.equalNan)
    : compareIntegers(actual, expected, pairing);
  const message = mismatchMessage(tally, pairing, actual.shape);
  return {
    mask: tally.mask,
    mismatches: tally.mismatches,
    total: tally.mask.length,
    rtol: pairing.rtol,
    atol: pairing.atol,
    maxAbsDiff: tally.maxAbs,
    maxAbsIndex: unravel(tally.maxAbsAt, actual.shape),
    maxRelDiff: tally.maxRel,
    maxRelIndex: unravel(tally.maxRelAt, actual.shape),
    worstAbsDiff: tally.worst,
    ...(message !== undefined ? { message } : {}),
  };
}

type Path = Array<string | number>;

interface Pair {
  actual: Value;
  expected: Value;
  path: Path;
}

// ------------------------------------------------------------------------------------ values as Python prints them

/** Whether a JavaScript number stands for a Python int (a safe integer, 0 and -0 included) rather than a float. */
const isPyInt = (v: number): boolean => Number.isSafeInteger(v);

/** Python's type() of a value, as `<class 'X'>`. */
function pyType(v: Value | undefined): string {
  if (v === null || v === undefined) return "<class 'NoneType'>";
  if (isTensor(v)) return "<class 'torch.Tensor'>";
  if (Array.isArray(v)) return "<class 'list'>";
  if (typeof v === 'number') return isPyInt(v) ? "<class 'int'>" : "<class 'float'>";
  if (typeof v === 'boolean') return "<class 'bool'>";
  if (typeof v === 'string') return "<class 'str'>";
  return "<class 'dict'>";
}

/** Python's repr of a value (tensors as torch prints them, arrays as lists, objects as dicts). */
function pyRepr(v: Value | undefined, depth = 0): string {
  if (depth > 100) return '...';
  if (v === null || v === undefined) return 'None';
  if (isTensor(v)) return torchRepr(v);
  if (typeof v === 'number') return isPyInt(v) && !Object.is(v, -0) ? String(v) : pyFloat(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'string') return pyStr(v);
  if (Array.isArray(v)) return `[${v.map((item) => pyRepr(item, depth + 1)).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, item]) => `${pyStr(k)}: ${pyRepr(item, depth + 1)}`)
    .join(', ')}}`;
}

/**
 * What torch's f"{value}" prints: a string itself, a 0-dim tensor its item (Tensor.__format__), anything
 * else its repr.
 */
function pyStrOf(v: Value | undefined): string {
  if (typeof v === 'string') return v;
  if (isTensor(v) && v.shape.length === 0 && v.data.length === 1) {
    const dtype = checkTensor(v, 'tensor');
    if (dtype === 'bool') return v.data[0] ? 'True' : 'False';
    return isFloat(dtype) ? pyFloat(elementValue(v, dtype, 0)) : String(v.data[0]);
  }
  return pyRepr(v);
}

const PRINT = { precision: 4, threshold: 1000, edgeitems: 3, linewidth: 80 };

/** torch's repr of a tensor (torch/_tensor_str.py with the default print options), for "None mismatch". */
function torchRepr(t: Tensor): string {
  const dtype = checkTensor(t, 'tensor');
  const shape = t.shape;
  const count = t.data.length;
  const prefix = 'tensor(';
  const indent = prefix.length;
  const suffixes: string[] = [];
  let body: string;
  if (count === 0) {
    if (shape.length !== 1) suffixes.push(`size=${shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`}`);
    if (dtype !== 'float32') suffixes.push(`dtype=torch.${dtype}`);
    body = '[]';
  } else {
    if (dtype !== 'float32' && dtype !== 'int64' && dtype !== 'bool') suffixes.push(`dtype=torch.${dtype}`);
    const summarize = count > PRINT.threshold;
    const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    const floating = isFloat(dtype);
    const valueAt = (i: number): number => elementValue(t, dtype, i);
    const textAt = (i: number): string =>
      dtype === 'bool' ? (t.data[i] ? 'True' : 'False') : floating ? '' : String(t.data[i]);
    // the elements the formatter sees: all, or the edge items of every dimension when summarized
    const seen: number[] = [];
    const collect = (offset: number, d: number): void => {
      if (d === shape.length) {
        seen.push(offset);
        return;
      }
      const size = shape[d];
      const edges = summarize && size > 2 * PRINT.edgeitems;
      for (let i = 0; i < size; i++) {
        if (edges && i === PRINT.edgeitems) i = size - PRINT.edgeitems;
        collect(offset + i * strides[d], d + 1);
      }
    };
    collect(0, 0);
    let width = 1;
    let intMode = true;
    let sciMode = false;
    if (!floating) {
      for (const i of seen) width = Math.max(width, textAt(i).length);
    } else {
      const values = seen.map(valueAt).filter((v) => Number.isFinite(v) && v !== 0);
      if (values.length) {
        const magnitudes = values.map(Math.abs);
        const min = Math.min(...magnitudes);
        const max = Math.max(...magnitudes);
        intMode = values.every((v) => v === Math.ceil(v));
        sciMode = max / min > 1000 || max > 1e8 || (!intMode && min < 1e-4);
        for (const v of values) {
          const text = sciMode
            ? pyExponent(v, PRINT.precision)
            : intMode
              ? `${pyFixed(v, 0)}.`
              : pyFixed(v, PRINT.precision);
          width = Math.max(width, text.length);
        }
      }
    }
    const format = (i: number): string => {
      let text: string;
      if (!floating) text = textAt(i);
      else {
        const v = valueAt(i);
        if (sciMode) text = pyExponent(v, PRINT.precision).padStart(width);
        else if (intMode) text = `${pyFixed(v, 0)}${Number.isFinite(v) ? '.' : ''}`;
        else text = pyFixed(v, PRINT.precision);
      }
      return text.padStart(width);
    };
    const vector = (offset: number, d: number, at: number): string => {
      const size = shape[d];
      const perLine = Math.max(1, Math.floor((PRINT.linewidth - at) / (width + 2)));
      const items: string[] = [];
      for (let i = 0; i < size; i++) {
        if (summarize && size > 2 * PRINT.edgeitems && i === PRINT.edgeitems) {
          items.push(' ...');
          i = size - PRINT.edgeitems;
        }
        items.push(format(offset + i * strides[d]));
      }
      const lines: string[] = [];
      for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(', '));
      return `[${lines.join(`,\n${' '.repeat(at + 1)}`)}]`;
    };
    const nested = (offset: number, d: number, at: number): string => {
      const dims = shape.length - d;
      if (dims === 0) return format(offset);
      if (dims === 1) return vector(offset, d, at);
      const size = shape[d];
      const slices: string[] = [];
      for (let i = 0; i < size; i++) {
        if (summarize && size > 2 * PRINT.edgeitems && i === PRINT.edgeitems) {
          slices.push('...');
          i = size - PRINT.edgeitems;
        }
        slices.push(nested(offset + i * strides[d], d + 1, at + 1));
      }
      return `[${slices.join(`,${'\n'.repeat(dims - 1)}${' '.repeat(at + 1)}`)}]`;
    };
    body = nested(0, 0, indent);
  }
  const text = prefix + body;
  const parts = [text];
  let lastLine = text.length - text.lastIndexOf('\n') + 1;
  for (const suffix of suffixes) {
    if (lastLine + suffix.length + 2 > PRINT.linewidth) {
      parts.push(`,\n${' '.repeat(indent)}${suffix}`);
      lastLine = indent + suffix.length;
    } else {
      parts.push(`, ${suffix}`);
      lastLine += suffix.length + 2;
    }
  }
  return `${parts.join('')})`;
}

function pyList(keys: string[]): string {
  return `[${keys.map(pyStr).join(', ')}]`;
}

/** torch.testing's errors that are TypeErrors rather than AssertionErrors (no pair handles the inputs). */
class Unsupported extends Error {}

/** Walks both structures as torch.testing does (sorted keys), returning the pairs to compare. */
function originatePairs(actual: Value, expected: Value, path: Path, out: Pair[], depth = 0): void {
  if (depth > 1000) throw new Mismatch('The values nest deeper than 1000 levels');
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length)
      throw new Mismatch(`The length of the sequences mismatch: ${actual.length} != ${expected.length}`, {
        cause: path,
      });
    actual.forEach((item, i) => originatePairs(item, expected[i], [...path, i], out, depth + 1));
    return;
  }
  const isMapping = (v: Value): v is { [key: string]: Value } =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && !isTensor(v);
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
  // torch's pairs in their order: None, booleans, numbers, tensors; any other inputs no pair handles
  const none = (v: Value): boolean => v === null || v === undefined;
  const handled =
    none(actual) ||
    none(expected) ||
    (typeof actual === 'boolean' && typeof expected === 'boolean') ||
    (typeof actual === 'number' && typeof expected === 'number') ||
    (isTensor(actual) && isTensor(expected));
  if (!handled)
    throw new Unsupported(
      `No comparison pair was able to handle inputs of type ${pyType(actual)} and ${pyType(expected)}.`,
      { cause: path },
    );
  out.push({ actual, expected, path });
}

function comparePair(pair: Pair, t: Tolerances): void {
  const { actual, expected } = pair;
  if (actual === null || actual === undefined || expected === null || expected === undefined) {
    const both = (actual === null || actual === undefined) && (expected === null || expected === undefined);
    if (!both) throw new Mismatch(`None mismatch: ${pyStrOf(actual)} is not ${pyStrOf(expected)}`);
    return;
  }
  if (isTensor(actual)) {
    const result = compareTensors(actual, expected as Tensor, t);
    if (result.message) throw new Mismatch(result.message);
    return;
  }
  if (typeof actual === 'number') {
    const e = expected as number;
    if (t.checkDtype && isPyInt(actual) !== isPyInt(e))
      throw new Mismatch(`The (d)types do not match: ${pyType(actual)} != ${pyType(e)}.`);
    // int with int: int64's tolerances (exact); otherwise float64's
    const integers = isPyInt(actual) && isPyInt(e);
    const rtol = t.given ? t.rtol : integers ? 0 : 1e-7;
    const atol = t.given ? t.atol : integers ? 0 : 1e-7;
    let close = actual === e || (t.equalNan && Number.isNaN(actual) && Number.isNaN(e));
    const diff = Math.abs(actual - e);
    if (!close && !(rtol === 0 && atol === 0)) close = Number.isFinite(diff) && diff <= atol + Math.abs(rtol * e);
    if (close) return;
    const exact = rtol === 0 && atol === 0;
    const show = (v: number): string => (integers ? String(v) : pyFloat(v));
    throw new Mismatch(
      `Scalars are not ${exact ? 'equal' : 'close'}!\n\nAbsolute difference: ${show(diff)}${exact ? '' : ` (up to ${pyFloat(atol)} allowed)`}\n` +
        `Relative difference: ${pyFloat(e === 0 ? Infinity : diff / Math.abs(e))}${exact ? '' : ` (up to ${pyFloat(rtol)} allowed)`}`,
    );
  }
  if (typeof actual === 'boolean') {
    if (actual !== expected)
      throw new Mismatch(`Booleans mismatch: ${actual ? 'True' : 'False'} is not ${expected ? 'True' : 'False'}`);
  }
}

function withPath(message: string, path: Path): string {
  if (!path.length) return message;
  return `${message}\n\nThe failure occurred for item ${path.map((p) => `[${typeof p === 'number' ? p : pyStr(p)}]`).join('')}`;
}

/** The failure torch.testing.assert_close would raise, or undefined: its message, and whether it is a TypeError. */
function closeFailure(
  actual: Value,
  expected: Value,
  options: CloseOptions | undefined,
  where: string,
): { message: string; typeError: boolean } | undefined {
  const t = resolveOptions(options, where);
  const pairs: Pair[] = [];
  try {
    originatePairs(actual, expected, [], pairs);
  } catch (error) {
    if (error instanceof Mismatch || error instanceof Unsupported)
      return {
        message: withPath(error.message, (error.cause as Path | undefined) ?? []),
        typeError: error instanceof Unsupported,
      };
    throw error;
  }
  for (const pair of pairs) {
    try {
      comparePair(pair, t);
    } catch (error) {
      if (error instanceof Mismatch) return { message: withPath(error.message, pair.path), typeError: false };
      throw error;
    }
  }
  return undefined;
}

/**
 * The failure message torch.testing.assert_close would give for these values, or undefined when they are
 * close. Throws VbpError for bad options or malformed tensors.
 */
export function closeMismatch(
  actual: Value,
  expected: Value,
  options?: CloseOptions,
  where = 'assertClose',
): string | undefined {
  return closeFailure(actual, expected, options, where)?.message;
}

/**
 * Throws node's assert.AssertionError unless `actual` and `expected` are close, with torch.testing's message:
 * mismatched elements (count and share), the greatest absolute and relative differences with their indices,
 * and the tolerances used; for structures, the path of the failing item. Inputs that torch.testing cannot
 * compare (strings, a tensor and a number, a list and a dict, ...) throw a TypeError with its message.
 */
export function assertClose(actual: Value, expected: Value, options?: CloseOptions): void {
  const failure = closeFailure(actual, expected, options, 'assertClose');
  if (failure === undefined) return;
  const error = failure.typeError
    ? new TypeError(failure.message)
    : new AssertionError({ message: failure.message, actual, expected, operator: 'assertClose' });
  Error.captureStackTrace?.(error, assertClose);
  throw error;
}

/**
 * The element-wise mask of assertClose (a bool tensor of the common shape), without throwing on a mismatch:
 * torch.isclose on the inputs promoted as assert_close promotes them, with assert_close's default
 * tolerances. Different shapes fail with INPUT_SHAPE, different dtypes (with checkDtype) with INPUT_DTYPE.
 */
export function isClose(actual: Tensor, expected: Tensor, options?: CloseOptions): Tensor<Uint8Array> {
  const t = resolveOptions(options, 'isClose');
  if (!isTensor(actual) || !isTensor(expected))
    throw new VbpError('INPUT', 'isClose(actual, expected): both must be tensors { data, shape }');
  try {
    return { data: compareTensors(actual, expected, t).mask, shape: [...actual.shape], dtype: 'bool' };
  } catch (error) {
    if (error instanceof Mismatch)
      throw new VbpError(
        error.message.includes("'shape'") ? 'INPUT_SHAPE' : 'INPUT_DTYPE',
        `isClose: ${error.message}`,
      );
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
