/**
 * NumPy .npy files (format versions 1-3), little-endian, C order: float16/32/64, int8/16/32/64, uint8, bool
 * (float16 as raw bits in a Uint16Array).
 */
import fs from 'node:fs';
import { VbpError } from '../errors';
import { numel, type Tensor, type TypedArray, type DType } from '../tensor';
import { readFailure, readFileChecked } from '../util/files';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

const DESCR: Record<string, { dtype: DType; bytes: number; make: (b: ArrayBuffer, o: number, n: number) => TypedArray }> = {
  '<f4': { dtype: 'float32', bytes: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  '<f8': { dtype: 'float64', bytes: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  '<f2': { dtype: 'float16', bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  '<i4': { dtype: 'int32', bytes: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  '<i8': { dtype: 'int64', bytes: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  '<i2': { dtype: 'int16', bytes: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  '|i1': { dtype: 'int8', bytes: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  '|u1': { dtype: 'uint8', bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  '|b1': { dtype: 'bool', bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
};

function fail(file: string, message: string): never {
  throw new VbpError('DATA', `'${file}' is not a readable .npy file: ${message}`);
}

interface NpyHeader {
  descr: string;
  shape: number[];
  /** Where the data starts. */
  offset: number;
}

/** The header of a .npy file: dtype, shape and where the data starts (throws DATA naming `file`). */
function parseHeader(buffer: Buffer, file: string): NpyHeader {
  if (buffer.length < 10 || !buffer.subarray(0, 6).equals(MAGIC)) fail(file, 'missing \\x93NUMPY magic');
  const major = buffer[6];
  if (major < 1 || major > 3) fail(file, `format version ${major} is not supported (1 to 3 are)`);
  const headerLength = major === 1 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  if (headerStart + headerLength > buffer.length) fail(file, 'header runs past the end of the file');
  const header = buffer.subarray(headerStart, headerStart + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) fail(file, `cannot parse header ${JSON.stringify(header)}`);
  if (fortran === 'True') fail(file, 'Fortran-ordered arrays are not supported (save with np.ascontiguousarray)');
  if (!DESCR[descr]) fail(file, `unsupported dtype '${descr}' (supported: ${Object.keys(DESCR).join(', ')})`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(file, `bad shape (${shapeText})`);
  return { descr, shape, offset: headerStart + headerLength };
}

/** Parses a .npy file's bytes into a tensor (the data is copied into its own aligned buffer). */
export function parseNpy(bytes: Uint8Array, file = '<buffer>'): Tensor {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { descr, shape, offset } = parseHeader(buffer, file);
  const kind = DESCR[descr];
  const count = numel(shape);
  if (buffer.length - offset !== count * kind.bytes) {
    fail(file, `shape [${shape.join(', ')}] of ${descr} needs ${count * kind.bytes} bytes, the file has ${buffer.length - offset}`);
  }
  const copy = new ArrayBuffer(count * kind.bytes);
  new Uint8Array(copy).set(buffer.subarray(offset));
  return { data: kind.make(copy, 0, count), shape, dtype: kind.dtype };
}

/** The shape of the array in a .npy file, from its header alone (the data is not read). */
export function readNpyShape(file: string): number[] {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const prefix = Buffer.alloc(12);
    const got = fs.readSync(fd, prefix, 0, 12, 0);
    const headerLength = got >= 10 && prefix[6] === 1 ? prefix.readUInt16LE(8) : got >= 12 ? prefix.readUInt32LE(8) : 0;
    const head = Buffer.alloc(Math.min(12 + headerLength, 1 << 20));
    const read = fs.readSync(fd, head, 0, head.length, 0);
    return parseHeader(head.subarray(0, read), file).shape;
  } catch (error) {
    if (error instanceof VbpError) throw error;
    throw readFailure('.npy file', file, error);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function readNpy(file: string): Tensor {
  return parseNpy(readFileChecked(file, '.npy file'), file);
}

const WRITE_DESCR: Record<string, string> = {
  Float32Array: '<f4',
  Float64Array: '<f8',
  Int32Array: '<i4',
  BigInt64Array: '<i8',
  Int16Array: '<i2',
  Int8Array: '|i1',
  Uint8Array: '|u1',
};

/** Serialises a tensor as a version 1.0 .npy file. */
export function formatNpy(t: Tensor): Buffer {
  const descr = t.dtype === 'bool' ? '|b1' : t.dtype === 'float16' ? '<f2' : WRITE_DESCR[Object.prototype.toString.call(t.data).slice(8, -1)];
  if (!descr) throw new VbpError('INPUT_DTYPE', `a ${t.dtype ?? 'tensor'} of ${Object.prototype.toString.call(t.data).slice(8, -1)} cannot be stored in a .npy file (NumPy has no bfloat16)`);
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]);
}
