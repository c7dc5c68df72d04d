/** The tensor value that crosses the boundary: a typed array and a shape (row-major, like torch.Tensor). */
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/**
 * Element types. float16 and bfloat16 tensors (read from PyTorch's files) hold their raw 16-bit patterns in a
 * Uint16Array, the float8 kinds their raw 8-bit patterns in a Uint8Array; bool tensors hold 0/1 in a
 * Uint8Array; uint16, uint32 and uint64 (PyTorch >= 2.3) a Uint16Array, Uint32Array and BigUint64Array.
 * Models take and return float32, float64, int32, int64, int16, int8, uint8 and bool only.
 */
export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int32'
  | 'int64'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'float8_e4m3fn'
  | 'float8_e5m2'
  | 'float8_e4m3fnuz'
  | 'float8_e5m2fnuz'
  | 'float8_e8m0fnu';

export interface Tensor<T extends TypedArray = TypedArray> {
  data: T;
  shape: number[];
  /** Set on tensors returned by the library; inferred from `data` on inputs. */
  dtype?: DType;
}

/** What a model's forward can return: tensors, and tuples/lists/dicts of them. */
export type Value = Tensor | Value[] | { [key: string]: Value } | number | boolean | string | null;

import { VbpError } from './errors';

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A float32 tensor; checks that `data` fits `shape`. */
export function tensor(data: Float32Array | number[], shape: number[]): Tensor<Float32Array> {
  const array =
    Object.prototype.toString.call(data) === '[object Float32Array]' ? (data as Float32Array) : Float32Array.from(data);
  if (numel(shape) !== array.length) {
    throw new VbpError(
      'INPUT_SHAPE',
      `shape [${shape.join(', ')}] needs ${numel(shape)} elements but data has ${array.length}`,
    );
  }
  return { data: array, shape: [...shape], dtype: 'float32' };
}

export function isTensor(value: unknown): value is Tensor {
  return (
    typeof value === 'object' &&
    value !== null &&
    ArrayBuffer.isView((value as Tensor).data) &&
    Array.isArray((value as Tensor).shape)
  );
}

/** The single tensor a model returned, or a clear error if it returned something else. */
export function expectTensor(value: Value, what = 'model output'): Tensor {
  if (isTensor(value)) return value;
  if (Array.isArray(value) && value.length > 0 && isTensor(value[0])) return value[0];
  throw new VbpError('FORWARD', `${what} is not a tensor`);
}
