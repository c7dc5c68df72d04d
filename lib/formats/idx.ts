/**
 * IDX files (the MNIST / Fashion-MNIST format), gzipped or not: a magic number giving the element type and
 * rank, big-endian sizes, then the data.
 */
import zlib from 'node:zlib';
import { VbpError } from '../errors';
import { readFileChecked } from '../util/files';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export function parseIdx(bytes: Buffer, file = '<buffer>'): IdxArray {
  const fail = (why: string): never => {
    throw new VbpError('DATA', `'${file}' is not a readable IDX file: ${why}`);
  };
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (error) {
      return fail(`gzip data is corrupt (${(error as Error).message})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) fail('bad magic number');
  if (bytes[2] !== 0x08) fail(`element type 0x${bytes[2].toString(16)} is not supported (only unsigned bytes, 0x08)`);
  const rank = bytes[3];
  if (rank < 1 || bytes.length < 4 + 4 * rank) fail('header is truncated');
  const shape = Array.from({ length: rank }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * rank;
  if (bytes.length - offset !== count)
    fail(`shape [${shape.join(', ')}] needs ${count} bytes of data, the file has ${bytes.length - offset}`);
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + offset, count) };
}

export function readIdx(file: string): IdxArray {
  return parseIdx(readFileChecked(file, 'IDX file'), file);
}
