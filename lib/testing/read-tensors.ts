/**
 * readTensors / readTensor: PyTorch's and NumPy's tensor files as our values. The format is found from the
 * file's first bytes (and the .safetensors extension): torch.save zip archives, .npy, .npz, .safetensors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VbpError } from '../errors';
import { isTensor, type DType, type Tensor, type Value } from '../tensor';
import { parseNpy } from '../formats/npy';
import { readNpz } from '../formats/npz';
import { decodeSafetensors, type SafeDType } from '../formats/safetensors';
import { isTorchSaveZip, parseTorchSave, readTorchSave } from '../formats/torch-save';
import { isZip, ZipReader } from '../formats/zip';
import { readFailure } from '../util/files';

const SAFE_DTYPES: Record<SafeDType, DType> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
  U16: 'uint16',
  U32: 'uint32',
  U64: 'uint64',
  F8_E4M3: 'float8_e4m3fn',
  F8_E5M2: 'float8_e5m2',
  F8_E8M0: 'float8_e8m0fnu',
  F8_E4M3FNUZ: 'float8_e4m3fnuz',
  F8_E5M2FNUZ: 'float8_e5m2fnuz',
};

function looksLikeSafetensors(bytes: Uint8Array, file: string): boolean {
  if (path.extname(file).toLowerCase() === '.safetensors') return true;
  if (bytes.length < 10) return false;
  const length = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigUInt64LE(0);
  if (length === 0n || length > BigInt(bytes.length - 8)) return false;
  // the header's first character after JSON whitespace is '{'
  let at = 8;
  while (
    at < 8 + Number(length) &&
    (bytes[at] === 0x20 || bytes[at] === 0x09 || bytes[at] === 0x0a || bytes[at] === 0x0d)
  )
    at++;
  return bytes[at] === 0x7b;
}

type Format = 'torch.save' | 'npz' | 'npy' | 'safetensors';

/** The values in a file's bytes (see readTensors), and the format they were found in. */
function parseTensorFile(bytes: Uint8Array, file: string): { format: Format; value: Value } {
  if (isZip(bytes)) {
    const zip = new ZipReader(bytes, file, 'torch.save or .npz file');
    if (isTorchSaveZip(zip)) return { format: 'torch.save', value: readTorchSave(zip, file) };
    if (zip.entries.length > 0 && zip.entries.every((e) => e.name.endsWith('.npy')))
      return { format: 'npz', value: readNpz(zip, file) };
    throw new VbpError(
      'DATA',
      `'${file}' is a zip archive but neither a torch.save file (no data.pkl) nor a .npz file (entries other than .npy)`,
    );
  }
  if (
    bytes.length >= 6 &&
    bytes[0] === 0x93 &&
    Buffer.from(bytes.buffer, bytes.byteOffset, 6).toString('latin1', 1) === 'NUMPY'
  )
    return { format: 'npy', value: parseNpy(bytes, file) };
  if (looksLikeSafetensors(bytes, file)) {
    const { tensors } = decodeSafetensors(bytes, file);
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(tensors)) {
      Object.defineProperty(out, name, {
        value: { data: t.data, shape: t.shape, dtype: SAFE_DTYPES[t.dtype] },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return { format: 'safetensors', value: out };
  }
  if (bytes.length >= 2 && bytes[0] === 0x80) return { format: 'torch.save', value: parseTorchSave(bytes, file) };
  throw new VbpError(
    'DATA',
    `'${file}' is not a tensor file: expected a torch.save zip archive, .npy, .npz or .safetensors file`,
  );
}

async function readTensorFile(file: string): Promise<{ format: Format; value: Value }> {
  if (typeof file !== 'string') throw new VbpError('INVALID_ARGUMENT', 'readTensors(file): file must be a path string');
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (error) {
    throw readFailure('tensor file', file, error);
  }
  return parseTensorFile(bytes, file);
}

/**
 * What a file holds, as our values: a tensor, or arrays (lists and tuples) and objects (dicts, keys in the
 * file's order) of tensors, numbers, strings, booleans and null.
 *
 * - torch.save files (zip format): tensors of every common dtype (float16 and bfloat16 as raw bits in a
 *   Uint16Array), PyTorch >= 2.3's uint16/32/64 (Uint16Array with the dtype, Uint32Array, BigUint64Array)
 *   and float8 kinds (raw bits in a Uint8Array with the dtype), views and non-contiguous tensors (gathered),
 *   tensors sharing a storage (contiguous ones share memory), state_dicts, parameters. A pickle that asks
 *   for anything else (a class, a function such as os.system) is refused with DATA before anything is
 *   built: nothing in a file is ever run.
 * - .npy (as np.load reads it): a tensor; .npz and .safetensors (as the safetensors package reads it): an
 *   object of tensors by name. The README ("Testing against PyTorch") lists what each reader refuses.
 *
 * Damaged files fail with DATA naming the file and what was wrong; unreadable ones with IO.
 */
export async function readTensors(file: string): Promise<Value> {
  return (await readTensorFile(file)).value;
}

function describe(value: Value): string {
  if (Array.isArray(value)) return `a list of ${value.length} values`;
  if (value === null) return 'None';
  if (typeof value === 'object')
    return `a dict of ${Object.keys(value).length} entries (${Object.keys(value).slice(0, 5).join(', ')}${Object.keys(value).length > 5 ? ', ...' : ''})`;
  return `a ${typeof value}`;
}

/**
 * The one tensor in a file: a file that holds a tensor (torch.save of a tensor, .npy), or a .npz or
 * .safetensors file of exactly one array. Anything else fails with DATA saying what the file holds.
 */
export async function readTensor(file: string): Promise<Tensor> {
  const { format, value } = await readTensorFile(file);
  if (isTensor(value)) return value;
  // .npz and .safetensors files are always objects of arrays by name; a torch.save dict is a structure.
  const only =
    typeof value === 'object' && value !== null && (format === 'npz' || format === 'safetensors')
      ? Object.values(value)
      : [];
  if (only.length === 1 && isTensor(only[0])) return only[0];
  throw new VbpError(
    'DATA',
    `'${file}' holds ${describe(value)}, not a single tensor (use readTensors for structures)`,
  );
}
