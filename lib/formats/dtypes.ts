/**
 * Tensor element types: bytes per element and the typed array each one is held in, a tensor's dtype (its
 * `dtype`, or the one its array implies), and the numbers the raw bits of float16, bfloat16 and float8
 * elements stand for. Shared by the tensor files (torch-save, npy) and the comparisons (testing/assert-close).
 */
import { VbpError } from '../errors';
import { numel, type DType, type Tensor, type TypedArray } from '../tensor';

type Make = (b: ArrayBuffer, offset: number, length: number) => TypedArray;
const F32: Make = (b, o, n) => new Float32Array(b, o, n);
const F64: Make = (b, o, n) => new Float64Array(b, o, n);
const U16: Make = (b, o, n) => new Uint16Array(b, o, n);
const U8: Make = (b, o, n) => new Uint8Array(b, o, n);

/** Bytes per element, typed array (its tag name) and constructor of each dtype. */
export const DTYPES: Record<DType, { bytes: number; array: string; make: Make }> = {
  float32: { bytes: 4, array: 'Float32Array', make: F32 },
  float64: { bytes: 8, array: 'Float64Array', make: F64 },
  float16: { bytes: 2, array: 'Uint16Array', make: U16 },
  bfloat16: { bytes: 2, array: 'Uint16Array', make: U16 },
  int64: { bytes: 8, array: 'BigInt64Array', make: (b, o, n) => new BigInt64Array(b, o, n) },
  int32: { bytes: 4, array: 'Int32Array', make: (b, o, n) => new Int32Array(b, o, n) },
  int16: { bytes: 2, array: 'Int16Array', make: (b, o, n) => new Int16Array(b, o, n) },
  int8: { bytes: 1, array: 'Int8Array', make: (b, o, n) => new Int8Array(b, o, n) },
  uint8: { bytes: 1, array: 'Uint8Array', make: U8 },
  bool: { bytes: 1, array: 'Uint8Array', make: U8 },
  uint16: { bytes: 2, array: 'Uint16Array', make: U16 },
  uint32: { bytes: 4, array: 'Uint32Array', make: (b, o, n) => new Uint32Array(b, o, n) },
  uint64: { bytes: 8, array: 'BigUint64Array', make: (b, o, n) => new BigUint64Array(b, o, n) },
  float8_e4m3fn: { bytes: 1, array: 'Uint8Array', make: U8 },
  float8_e5m2: { bytes: 1, array: 'Uint8Array', make: U8 },
  float8_e4m3fnuz: { bytes: 1, array: 'Uint8Array', make: U8 },
  float8_e5m2fnuz: { bytes: 1, array: 'Uint8Array', make: U8 },
  float8_e8m0fnu: { bytes: 1, array: 'Uint8Array', make: U8 },
};

/** The float8 kinds (raw bits in a Uint8Array). */
const FLOAT8_DTYPES: readonly DType[] = [
  'float8_e4m3fn',
  'float8_e5m2',
  'float8_e4m3fnuz',
  'float8_e5m2fnuz',
  'float8_e8m0fnu',
];

// By tag, not instanceof: arrays made by the addon or another vm context are of another realm.
const ARRAY_DTYPES: Record<string, DType> = {
  '[object Float32Array]': 'float32',
  '[object Float64Array]': 'float64',
  '[object BigInt64Array]': 'int64',
  '[object BigUint64Array]': 'uint64',
  '[object Int32Array]': 'int32',
  '[object Uint32Array]': 'uint32',
  '[object Int16Array]': 'int16',
  '[object Int8Array]': 'int8',
  '[object Uint8Array]': 'uint8',
};

/**
 * A tensor's dtype: its `dtype`, or the one its typed array implies (checked against each other). Throws
 * INPUT_DTYPE for a Uint16Array without dtype (float16, bfloat16 or uint16?) or a dtype its array cannot hold.
 */
export function dtypeOfTensor(t: Tensor, what = 'tensor'): DType {
  const tag = Object.prototype.toString.call(t.data);
  const implied = ARRAY_DTYPES[tag];
  if (t.dtype === undefined) {
    if (implied) return implied;
    throw new VbpError(
      'INPUT_DTYPE',
      `${what}: ${tag.slice(8, -1)} data needs a dtype ('float16', 'bfloat16' or 'uint16' for a Uint16Array)`,
    );
  }
  if (!Object.prototype.hasOwnProperty.call(DTYPES, t.dtype))
    throw new VbpError('INPUT_DTYPE', `${what}: unknown dtype '${String(t.dtype)}'`);
  const holds = DTYPES[t.dtype].array;
  if (tag !== `[object ${holds}]`)
    throw new VbpError('INPUT_DTYPE', `${what}: dtype '${t.dtype}' needs ${holds} data, not ${tag.slice(8, -1)}`);
  return t.dtype;
}

/** Checks that `t` is a tensor whose data fits its shape, and returns its dtype. */
export function checkTensor(t: Tensor, what = 'tensor'): DType {
  const dtype = dtypeOfTensor(t, what);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new VbpError('INPUT_SHAPE', `${what}: shape must be an array of non-negative integers`);
  }
  if (numel(t.shape) !== t.data.length) {
    throw new VbpError(
      'INPUT_SHAPE',
      `${what}: shape [${t.shape.join(', ')}] needs ${numel(t.shape)} elements but data has ${t.data.length}`,
    );
  }
  return dtype;
}

const FLOATS: readonly DType[] = ['float16', 'bfloat16', 'float32', 'float64', ...FLOAT8_DTYPES];
export const isFloat = (d: DType): boolean => FLOATS.includes(d);
export const isFloat8 = (d: DType): boolean => FLOAT8_DTYPES.includes(d);

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

/**
 * A float8 bit pattern as a number: e4m3fn (no infinities, NaN S.1111.111), e5m2 (IEEE-like), the fnuz kinds
 * (exponent bias one more, no -0, 0x80 the only NaN) and e8m0fnu (2^(bits - 127), 0xff NaN).
 */
export function float8ToNumber(bits: number, dtype: DType): number {
  if (dtype === 'float8_e8m0fnu') return bits === 0xff ? NaN : 2 ** (bits - 127);
  const fnuz = dtype === 'float8_e4m3fnuz' || dtype === 'float8_e5m2fnuz';
  if (fnuz && bits === 0x80) return NaN;
  const m = dtype === 'float8_e4m3fn' || dtype === 'float8_e4m3fnuz' ? 3 : 2;
  const exponentBits = 7 - m;
  const bias = (1 << (exponentBits - 1)) - 1 + (fnuz ? 1 : 0);
  const sign = bits & 0x80 ? -1 : 1;
  const exponent = (bits >> m) & ((1 << exponentBits) - 1);
  const mantissa = bits & ((1 << m) - 1);
  if (dtype === 'float8_e4m3fn' && exponent === 15 && mantissa === 7) return NaN;
  if (dtype === 'float8_e5m2' && exponent === 31) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** (1 - bias - m);
  return sign * (1 + mantissa / (1 << m)) * 2 ** (exponent - bias);
}

/** Element `i` of a tensor as a number (float16, bfloat16 and float8 decoded, 64-bit integers rounded to a double). */
export function elementValue(t: Tensor, dtype: DType, i: number): number {
  const v = t.data[i];
  if (dtype === 'float16') return halfToNumber(v as number);
  if (dtype === 'bfloat16') return bfloat16ToNumber(v as number);
  if (isFloat8(dtype)) return float8ToNumber(v as number, dtype);
  return Number(v);
}

/** The elements of a tensor as float64 numbers. */
export function floatValues(t: Tensor, dtype: DType): Float64Array {
  const out = new Float64Array(t.data.length);
  if (dtype === 'float16') for (let i = 0; i < out.length; i++) out[i] = halfToNumber((t.data as Uint16Array)[i]);
  else if (dtype === 'bfloat16')
    for (let i = 0; i < out.length; i++) out[i] = bfloat16ToNumber((t.data as Uint16Array)[i]);
  else if (isFloat8(dtype))
    for (let i = 0; i < out.length; i++) out[i] = float8ToNumber((t.data as Uint8Array)[i], dtype);
  else if (dtype === 'int64') for (let i = 0; i < out.length; i++) out[i] = Number((t.data as BigInt64Array)[i]);
  else if (dtype === 'uint64') for (let i = 0; i < out.length; i++) out[i] = Number((t.data as BigUint64Array)[i]);
  else for (let i = 0; i < out.length; i++) out[i] = (t.data as Float32Array)[i];
  return out;
}
