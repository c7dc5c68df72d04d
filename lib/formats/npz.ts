/**
 * NumPy .npz archives (np.savez, stored, and np.savez_compressed, deflated): a zip of .npy files, read as
 * an object of tensors by name (archive order), and written stored.
 */
import { VbpError } from '../errors';
import type { Tensor } from '../tensor';
import { formatNpy, parseNpy } from './npy';
import { writeZip, type ZipReader } from './zip';

/** The arrays of an opened .npz archive, by name (without `.npy`). */
export function readNpz(zip: ZipReader, file: string): Record<string, Tensor> {
  const arrays: Record<string, Tensor> = {};
  for (const entry of zip.entries) {
    if (!entry.name.endsWith('.npy')) zip.fail(`entry '${entry.name}' is not a .npy array`);
    const name = entry.name.slice(0, -4);
    if (Object.prototype.hasOwnProperty.call(arrays, name)) zip.fail(`it holds '${entry.name}' twice`);
    // defineProperty: an array named __proto__ is an entry like any other
    Object.defineProperty(arrays, name, {
      value: parseNpy(zip.read(entry), `${file}:${entry.name}`),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  if (zip.entries.length === 0)
    throw new VbpError('DATA', `'${file}' is an empty zip archive, not a .npz file of arrays`);
  return arrays;
}

/** An .npz archive (stored entries) of named tensors. */
export function formatNpz(arrays: Record<string, Tensor>): Buffer {
  return writeZip(Object.entries(arrays).map(([name, t]) => ({ name: `${name}.npy`, data: formatNpy(t) })));
}
