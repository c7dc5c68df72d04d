/**
 * writeTensors: our values as a file PyTorch reads back equal, chosen by extension: .npy (one tensor), .npz
 * and .safetensors (an object of tensors), anything else a torch.save zip archive (torch.load). Written
 * atomically: a failure leaves no file behind.
 */
import path from 'node:path';
import { VbpError } from '../errors';
import { isTensor, type DType, type Tensor, type Value } from '../tensor';
import { formatNpy } from '../formats/npy';
import { formatNpz } from '../formats/npz';
import { encodeSafetensors, type SafeDType, type SafeTensor } from '../formats/safetensors';
import { checkTensor } from '../formats/dtypes';
import { formatTorchSave } from '../formats/torch-save';
import { writeFileAtomically } from '../util/files';
import { checkOptionKeys } from '../util/options';

export interface WriteTensorsOptions {
  /** Replace an existing file (default true). */
  overwrite?: boolean;
}

const SAFE: Record<DType, SafeDType> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
  uint16: 'U16',
  uint32: 'U32',
  uint64: 'U64',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  float8_e8m0fnu: 'F8_E8M0',
  float8_e4m3fnuz: 'F8_E4M3FNUZ',
  float8_e5m2fnuz: 'F8_E5M2FNUZ',
};

function tensorsByName(file: string, value: Value, format: string): Record<string, Tensor> {
  if (isTensor(value)) return { [format === '.npz' ? 'arr_0' : 'tensor']: value };
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every(isTensor)) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      `writeTensors('${file}'): a ${format} file holds a tensor or an object of tensors by name (use a .pt file for other structures)`,
    );
  }
  return value as Record<string, Tensor>;
}

/** The bytes writeTensors writes for `file` (by its extension). */
function formatTensors(file: string, value: Value): Buffer {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') {
    if (!isTensor(value))
      throw new VbpError('INVALID_ARGUMENT', `writeTensors('${file}'): a .npy file holds one tensor`);
    checkTensor(value, 'value');
    return formatNpy(value);
  }
  if (ext === '.npz') {
    const arrays = tensorsByName(file, value, ext);
    for (const [name, t] of Object.entries(arrays)) checkTensor(t, name);
    return formatNpz(arrays);
  }
  if (ext === '.safetensors') {
    const tensors: Record<string, SafeTensor> = {};
    for (const [name, t] of Object.entries(tensorsByName(file, value, ext))) {
      tensors[name] = { dtype: SAFE[checkTensor(t, name)], shape: t.shape, data: t.data as SafeTensor['data'] };
    }
    return encodeSafetensors(tensors, {});
  }
  return formatTorchSave(value);
}

/**
 * Writes `value` to `file`: .npy (a tensor), .npz or .safetensors (a tensor or an object of tensors), any
 * other extension (.pt, .pth, ...) a torch.save zip archive that torch.load (also with weights_only=True)
 * reads back equal. Arrays become lists, plain objects dicts; float16/bfloat16 tensors need their dtype.
 */
export async function writeTensors(file: string, value: Value, options: WriteTensorsOptions = {}): Promise<void> {
  checkOptionKeys(options, ['overwrite'], 'writeTensors');
  if (typeof file !== 'string' || file.length === 0)
    throw new VbpError('INVALID_ARGUMENT', 'writeTensors(file, value): file must be a path string');
  const bytes = formatTensors(file, value);
  await writeFileAtomically(file, bytes, { overwrite: options.overwrite ?? true });
}
