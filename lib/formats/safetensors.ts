/**
 * The safetensors container (8-byte little-endian header length, JSON header, raw little-endian data),
 * readable by the `safetensors` Python package and by a few lines of any language. Used for statistics.
 */
import { VbpError, type ErrorCode } from '../errors';

export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float64Array | Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;
}

const BYTES: Record<SafeDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** The typed array that holds each safetensors dtype (F16 and BF16 as raw bits). */
const ARRAY_OF: Record<SafeDType, string> = {
  F64: 'Float64Array', F32: 'Float32Array', F16: 'Uint16Array', BF16: 'Uint16Array', I64: 'BigInt64Array',
  I32: 'Int32Array', I16: 'Int16Array', I8: 'Int8Array', U8: 'Uint8Array', BOOL: 'Uint8Array',
};

// By tag, not instanceof: arrays made by the addon or another vm context are of another realm.
function dtypeOf(data: SafeTensor['data']): SafeDType {
  const tag = Object.prototype.toString.call(data);
  if (tag === '[object Float64Array]') return 'F64';
  if (tag === '[object Float32Array]') return 'F32';
  if (tag === '[object BigInt64Array]') return 'I64';
  if (tag === '[object Int32Array]') return 'I32';
  if (tag === '[object Int16Array]') return 'I16';
  if (tag === '[object Int8Array]') return 'I8';
  if (tag === '[object Uint8Array]') return 'U8';
  throw new VbpError('INTERNAL', `cannot store ${tag} in safetensors without a dtype`);
}

function makeArray(dtype: SafeDType, buffer: ArrayBuffer): SafeTensor['data'] {
  switch (ARRAY_OF[dtype]) {
    case 'Float64Array': return new Float64Array(buffer);
    case 'Float32Array': return new Float32Array(buffer);
    case 'BigInt64Array': return new BigInt64Array(buffer);
    case 'Int32Array': return new Int32Array(buffer);
    case 'Int16Array': return new Int16Array(buffer);
    case 'Int8Array': return new Int8Array(buffer);
    case 'Uint16Array': return new Uint16Array(buffer);
    default: return new Uint8Array(buffer);
  }
}

export function encodeSafetensors(tensors: Record<string, SafeTensor['data'] | SafeTensor>, metadata: Record<string, string>): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, value] of Object.entries(tensors)) {
    const data = ArrayBuffer.isView(value) ? value : value.data;
    const shape = ArrayBuffer.isView(value) ? [data.length] : value.shape;
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const dtype = ArrayBuffer.isView(value) ? dtypeOf(data) : value.dtype;
    if (Object.prototype.toString.call(data) !== `[object ${ARRAY_OF[dtype]}]`) throw new VbpError('INTERNAL', `safetensors ${dtype} needs a ${ARRAY_OF[dtype]}`);
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pads the header (in bytes: names may be non-ASCII) so that the data starts 8-byte aligned.
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, ' ')]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...chunks]);
}

export interface DecodedSafetensors {
  metadata: Record<string, string>;
  tensors: Record<string, SafeTensor>;
}

/** Parses a safetensors file; failures are `code` errors saying the file is not a valid `what`. */
export function decodeSafetensors(bytes: Uint8Array, file: string, code: ErrorCode = 'DATA', what = 'safetensors file'): DecodedSafetensors {
  const fail = (why: string): never => {
    throw new VbpError(code, `'${file}' is not a valid ${what}: ${why}`);
  };
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 8) fail('shorter than its 8-byte header length');
  const headerLength = Number(buffer.readBigUInt64LE(0));
  if (headerLength > buffer.length - 8 || headerLength > 100_000_000) fail('header length runs past the end of the file');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buffer.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    return fail('header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const tensors: Record<string, SafeTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Object.values(entry).some((v) => typeof v !== 'string')) fail('__metadata__ must map names to strings');
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: SafeDType; shape?: number[]; data_offsets?: number[] };
    if (!dtype || !Object.prototype.hasOwnProperty.call(BYTES, dtype) || !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
        !Array.isArray(offsets) || offsets.length !== 2) {
      fail(`tensor '${name}' has a malformed entry`);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin ||
        dataStart + end > buffer.length || end - begin !== count * BYTES[dtype as SafeDType]) {
      fail(`tensor '${name}' has data offsets that do not fit the file or its shape`);
    }
    const copy = new ArrayBuffer(end - begin);
    new Uint8Array(copy).set(buffer.subarray(dataStart + begin, dataStart + end));
    const data = makeArray(dtype as SafeDType, copy);
    tensors[name] = { dtype: dtype as SafeDType, shape: shape as number[], data };
  }
  return { metadata, tensors };
}
