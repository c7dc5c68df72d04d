/**
 * torch.save files of PyTorch >= 2.3's dtypes (issue 23, item 7): uint16/uint32/uint64 and the float8 kinds,
 * which PyTorch saves as an UntypedStorage rebuilt by torch._utils._rebuild_tensor_v3. The files under
 * test/python/corpus/torch2 were written by PyTorch 2.13 (test/python/torch2_corpus.py) with a manifest of
 * every tensor's dtype, shape and bytes; they are read bit for bit. What writeTensors writes of them is read
 * back equal here, and by torch.load (also weights_only=True) when VBP_TORCH2_PYTHON names a Python with
 * PyTorch >= 2.3 (see torch2_corpus.py; the suite itself needs none). Comparing them: assert-close-torch2.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readTensors, writeTensors, isTensor, VbpError, type Tensor, type Value } from '../../lib';
import { repoRoot, tempDir } from '../helpers';

const corpus = path.join(repoRoot, 'test', 'python', 'corpus', 'torch2');
const manifest = JSON.parse(fs.readFileSync(path.join(corpus, 'manifest.json'), 'utf8')) as {
  torch: string;
  files: Array<{ file: string; value?: Manifest; refused?: string }>;
};
const dir = tempDir('torch-vbp-torch2-');

interface ManifestTensor {
  __tensor__: true;
  dtype: string;
  shape: number[];
  hex: string;
}
type Manifest =
  ManifestTensor | Manifest[] | { __dict__: Array<[string, Manifest]> } | number | string | boolean | null;

const ARRAY_OF: Record<string, string> = {
  uint16: 'Uint16Array',
  uint32: 'Uint32Array',
  uint64: 'BigUint64Array',
  float32: 'Float32Array',
};

function differences(value: Value, expected: Manifest, at = ''): string[] {
  if (expected !== null && typeof expected === 'object' && '__tensor__' in expected) {
    if (!isTensor(value)) return [`${at}: not a tensor`];
    const bytes = Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength).toString('hex');
    const tag = Object.prototype.toString.call(value.data).slice(8, -1);
    const holds = expected.dtype.startsWith('float8') ? 'Uint8Array' : ARRAY_OF[expected.dtype];
    const same =
      value.dtype === expected.dtype &&
      value.shape.join() === expected.shape.join() &&
      bytes === expected.hex &&
      tag === holds;
    return same
      ? []
      : [
          `${at}: ${value.dtype} ${tag} [${value.shape}] ${bytes} differs from ${expected.dtype} [${expected.shape}] ${expected.hex}`,
        ];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(value) || value.length !== expected.length) return [`${at}: not a list of ${expected.length}`];
    return expected.flatMap((item, i) => differences(value[i], item, `${at}[${i}]`));
  }
  if (expected !== null && typeof expected === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || isTensor(value))
      return [`${at}: not a dict`];
    const keys = expected.__dict__.map(([k]) => k);
    if (Object.keys(value).join('\n') !== keys.join('\n'))
      return [`${at}: keys ${Object.keys(value)} instead of ${keys}`];
    return expected.__dict__.flatMap(([k, item]) =>
      differences((value as Record<string, Value>)[k], item, `${at}.${k}`),
    );
  }
  return value === expected ? [] : [`${at}: ${String(value)} instead of ${String(expected)}`];
}

const readable = manifest.files.filter((f) => f.value !== undefined);

describe('torch.save files of uint16/32/64 and float8 (PyTorch >= 2.3, _rebuild_tensor_v3)', () => {
  it('the corpus was written by PyTorch >= 2.3 and covers every new dtype', () => {
    expect(Number(manifest.torch.split('.')[0]) * 100 + Number(manifest.torch.split('.')[1])).toBeGreaterThanOrEqual(
      203,
    );
    const names = readable.map((f) => f.file).join(' ');
    for (const dtype of [
      'uint16',
      'uint32',
      'uint64',
      'float8_e4m3fn',
      'float8_e5m2',
      'float8_e4m3fnuz',
      'float8_e5m2fnuz',
      'float8_e8m0fnu',
    ]) {
      expect(names).toContain(`${dtype}-structures.pt`);
    }
  });

  it('reads every tensor bit for bit: typed arrays for the unsigned kinds, raw bits with the dtype for float8', async () => {
    const wrong: string[] = [];
    for (const { file, value } of readable)
      wrong.push(...differences(await readTensors(path.join(corpus, file)), value as Manifest, file));
    expect(wrong).toEqual([]);
  });

  it('contiguous tensors of one untyped storage share its memory, as in PyTorch', async () => {
    const t = (await readTensors(path.join(corpus, 'uint32-structures.pt'))) as Record<string, Tensor<Uint32Array>>;
    expect(t.again).toBe(t.tensor);
    expect(t.row.data.buffer).toBe(t.tensor.data.buffer);
    t.tensor.data[4] = 12345;
    expect(t.row.data[0]).toBe(12345);
    expect(t.transposed.data.buffer).not.toBe(t.tensor.data.buffer); // gathered
  });

  it.each(manifest.files.filter((f) => f.refused !== undefined).map((f) => [f.file, f.refused as string]))(
    '%s: dtype %s is refused with DATA naming the file and the dtype',
    async (file, dtype) => {
      const target = path.join(corpus, file);
      const error = (await readTensors(target).catch((e: unknown) => e)) as VbpError;
      expect(error).toBeInstanceOf(VbpError);
      expect(error.code).toBe('DATA');
      expect(error.message).toContain(target);
      expect(error.message).toMatch(
        dtype === 'complex64' ? /ComplexFloatStorage/ : new RegExp(`torch\\.${dtype}, which is not read`),
      );
    },
  );

  it('writes them as PyTorch >= 2.3 does (UntypedStorage, _rebuild_tensor_v3) and reads them back bit for bit', async () => {
    const pairs: Array<[string, Manifest]> = [];
    for (const { file, value } of readable) {
      const target = path.join(dir, file);
      await writeTensors(target, await readTensors(path.join(corpus, file)));
      expect(differences(await readTensors(target), value as Manifest, file)).toEqual([]);
      pairs.push([target, value as Manifest]);
    }
    const pickle = fs.readFileSync(path.join(dir, 'uint16-structures.pt')).toString('latin1');
    expect(pickle).toContain('torch._utils\n_rebuild_tensor_v3');
    expect(pickle).toContain('torch.storage\nUntypedStorage');
    expect(pickle).toContain('torch\nuint16');
    const python = process.env.VBP_TORCH2_PYTHON;
    if (!python) return; // torch.load of these needs PyTorch >= 2.3, which the suite does not require
    const listing = path.join(dir, 'written.json');
    fs.writeFileSync(listing, JSON.stringify(pairs));
    const results = JSON.parse(
      execFileSync(python, [path.join(repoRoot, 'test', 'python', 'torch2_corpus.py'), 'check-written', listing], {
        encoding: 'utf8',
      }),
    ) as Array<{ written: string; equal: unknown; weightsOnly: unknown }>;
    expect(results.filter((r) => r.equal !== true || r.weightsOnly !== true)).toEqual([]);
  });
});
