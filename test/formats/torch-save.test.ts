/**
 * torch.save files (lib/formats/torch-save.ts, read and written through readTensors/writeTensors): PyTorch's
 * files read bit-exact and written so that torch.load reads them back bit-exact; pickles that ask to run
 * code refused before anything is built; what a pickle holds. The files come from
 * test/python/testing_corpus.py, run here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isTensor, readTensor, readTensors, writeTensors, VbpError, type Tensor, type Value } from '../../lib';
import { runPython, tempDir } from '../helpers';

const dir = tempDir('torch-vbp-testing-');
const marker = path.join(dir, 'MARKER-code-ran');

beforeAll(() => {
  for (const command of ['files', 'model']) runPython('testing_corpus.py', [command, dir]);
  runPython('testing_corpus.py', ['evil', dir, marker]);
});

async function code(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (error) {
    if (error instanceof VbpError) return error.code;
    throw error;
  }
}

interface ManifestTensor {
  __tensor__: true;
  dtype: string;
  shape: number[];
  hex: string;
}
type Manifest =
  ManifestTensor | Manifest[] | { __dict__: Array<[string, Manifest]> } | number | string | boolean | null;

/** Checks `value` against PyTorch's manifest, bit for bit; returns the paths that differ. */
function differences(value: Value, expected: Manifest, at = ''): string[] {
  if (expected !== null && typeof expected === 'object' && '__tensor__' in expected) {
    if (!isTensor(value)) return [`${at}: not a tensor`];
    const bytes = Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength).toString('hex');
    const same =
      value.dtype === expected.dtype && value.shape.join() === expected.shape.join() && bytes === expected.hex;
    return same ? [] : [`${at}: ${value.dtype} [${value.shape}] differs from ${expected.dtype} [${expected.shape}]`];
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

describe('reading and writing PyTorch files', () => {
  it('reads at least 100 files made by torch.save and numpy (every structure and dtype) bit-exact', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Array<{
      file: string;
      value: Manifest;
    }>;
    expect(manifest.filter((m) => m.file.endsWith('.pt')).length).toBeGreaterThanOrEqual(100);
    const wrong: string[] = [];
    for (const { file, value } of manifest)
      wrong.push(...differences(await readTensors(file), value, path.basename(file)));
    expect(wrong).toEqual([]);
  });

  it('tensors that share a storage share memory, as in PyTorch', async () => {
    const shared = (await readTensors(path.join(dir, 'files', 'float32-shared.pt'))) as Record<string, Tensor>;
    expect(shared.row.data.buffer).toBe(shared.whole.data.buffer);
    expect(shared.again).toBe(shared.whole);
    shared.whole.data[6] = 42;
    expect(shared.row.data[0]).toBe(42);
  });

  it('writes what it read so that torch.load (and numpy) read it back bit-exact', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Array<{ file: string }>;
    const out = path.join(dir, 'written');
    fs.mkdirSync(out);
    const pairs: Array<[string, string, string | null]> = [];
    for (const { file } of manifest) {
      const value = await readTensors(file);
      const base = path.join(out, path.basename(file));
      const target = file.endsWith('.pt') ? base : `${base}.pt`;
      await writeTensors(target, value);
      pairs.push([file, target, null]);
      if (file.endsWith('.npy') || file.endsWith('.npz')) {
        const ext = path.extname(file);
        await writeTensors(`${base}.again${ext}`, value);
        pairs.push([file, `${base}.again${ext}`, null]);
      }
      if (isTensor(value) && value.dtype !== undefined) {
        await writeTensors(`${base}.safetensors`, { tensor: value });
        pairs.push([file, `${base}.safetensors`, 'tensor']);
      }
    }
    const listing = path.join(dir, 'written.json');
    fs.writeFileSync(listing, JSON.stringify(pairs));
    const results = JSON.parse(runPython('testing_corpus.py', ['check-written', listing])) as Array<{
      written: string;
      equal: boolean;
      weightsOnly: boolean | string | null;
    }>;
    expect(results.length).toBeGreaterThanOrEqual(100);
    expect(results.filter((r) => !r.equal)).toEqual([]);
    // torch.load(weights_only=True) reads them too (PyTorch 1.13's restricted reader knows no float scalars).
    expect(results.filter((r) => r.weightsOnly === false)).toEqual([]);
    expect(results.filter((r) => r.weightsOnly === true).length).toBeGreaterThan(50);
    // and reading what was written gives the same values
    const again = await readTensors(pairs[0][1]);
    expect(differences(again, JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'))[0].value)).toEqual(
      [],
    );
  });

  it('readTensor returns the single tensor, or fails with DATA saying what the file holds', async () => {
    const t = await readTensor(path.join(dir, 'files', 'int64-tensor.pt'));
    expect(t.dtype).toBe('int64');
    expect(t.shape).toEqual([4, 6]);
    expect((await readTensor(path.join(dir, 'files', 'float16.npy'))).dtype).toBe('float16');
    await expect(readTensor(path.join(dir, 'files', 'float32-dict.pt'))).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringMatching(/holds a dict of 3 entries \(zeta, alpha, nested\), not a single tensor/),
    });
    await expect(readTensors(path.join(dir, 'missing.pt'))).rejects.toMatchObject({ code: 'IO' });
    await expect(readTensors(path.join(dir, 'model.pt'))).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringMatching(/TorchScript model/),
    });
  });

  it('writes atomically, refuses values it cannot store and unknown options', async () => {
    const target = path.join(dir, 'refused.npy');
    await expect(writeTensors(target, [{ data: new Float32Array(2), shape: [2] }])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      writeTensors(path.join(dir, 'bad.pt'), { data: new Float32Array(3), shape: [2] }),
    ).rejects.toMatchObject({ code: 'INPUT_SHAPE' });
    await expect(
      writeTensors(path.join(dir, 'half.pt'), { data: new Uint16Array(2), shape: [2] }),
    ).rejects.toMatchObject({ code: 'INPUT_DTYPE' });
    await expect(
      writeTensors(path.join(dir, 'x.pt'), { data: new Float32Array(1), shape: [1] }, {
        overwrite: true,
        atomic: true,
      } as never),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(fs.readdirSync(dir).filter((f) => /refused|bad\.pt|half\.pt|x\.pt|tmp-/.test(f))).toEqual([]);
  });
});

describe('pickles that ask for anything but tensors and containers', () => {
  it.each(['evil-system.pt', 'evil-eval.pt', 'evil-protocol4.pt', 'evil-legacy.pt'])(
    '%s is refused with DATA and nothing runs',
    async (name) => {
      const error = (await readTensors(path.join(dir, name)).catch((e: unknown) => e)) as VbpError;
      expect(error).toBeInstanceOf(VbpError);
      expect(error.code).toBe('DATA');
      expect(error.message).toContain(name);
      if (name !== 'evil-legacy.pt')
        expect(error.message).toMatch(/(posix|builtins|__builtin__)\.(system|eval), which torch-vbp refuses/);
      expect(fs.existsSync(marker)).toBe(false);
    },
  );
});

describe('what a pickle holds', () => {
  it('keeps the order of a state_dict and reads parameters as tensors', async () => {
    const state = (await readTensors(path.join(dir, 'files', 'float32-state_dict.pt'))) as Record<string, Tensor>;
    expect(Object.keys(state)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']);
    expect(await code(() => readTensor(path.join(dir, 'files', 'float64-parameter.pt')))).toBe('ok');
  });
});
