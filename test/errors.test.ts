/** Every failure is a VbpError with a stable code and a useful message; the codes are one list, native and JS. */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, cudaAvailable, versionInfo, tensor, ERROR_CODES, type ErrorCode } from '../lib';
import { fromNative } from '../lib/errors';
import { codeOf, fixture, npy, repoRoot, tempDir } from './helpers';

describe('error codes', () => {
  const dir = tempDir();

  it('missing file -> MODEL_NOT_FOUND', async () => {
    expect(await codeOf(loadModel(path.join(dir, 'missing.pt')))).toBe('MODEL_NOT_FOUND');
  });

  it('a file that is not TorchScript -> MODEL_LOAD, naming the file', async () => {
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'hello');
    await expect(loadModel(file)).rejects.toMatchObject({ code: 'MODEL_LOAD', message: expect.stringContaining(file) });
  });

  it('wrong input rank -> INPUT_SHAPE', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    expect(await codeOf(model.forward(tensor(new Float32Array(3 * 32 * 32), [3 * 32, 32])))).toBe('INPUT_SHAPE');
    model.dispose();
  });

  it('wrong input size -> INPUT_SHAPE', async () => {
    const model = await loadModel(fixture('deit_traced.pt'));
    expect(await codeOf(model.forward(tensor(new Float32Array(3 * 48 * 48), [1, 3, 48, 48])))).toBe('INPUT_SHAPE');
    model.dispose();
  });

  it('data that does not fit its shape -> INPUT_SHAPE before any work', async () => {
    const model = await loadModel(fixture('deit_traced.pt'));
    expect(await codeOf(model.forward({ data: new Float32Array(10), shape: [1, 3, 32, 32] }))).toBe('INPUT_SHAPE');
    model.dispose();
  });

  it('wrong input dtype -> INPUT_DTYPE', async () => {
    const model = await loadModel(fixture('deit_traced.pt'));
    expect(await codeOf(model.forward({ data: new Float64Array(3 * 32 * 32), shape: [1, 3, 32, 32] }))).toBe(
      'INPUT_DTYPE',
    );
    model.dispose();
  });

  it('a disposed model -> DISPOSED, for every call', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    model.dispose();
    model.dispose(); // twice is harmless
    expect(await codeOf(model.forward(npy('input_b1.npy')))).toBe('DISPOSED');
    expect(await codeOf(model.clone())).toBe('DISPOSED');
    expect(await codeOf(model.save(path.join(dir, 'x.pt')))).toBe('DISPOSED');
    expect(() => model.parameters()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(fs.existsSync(path.join(dir, 'x.pt'))).toBe(false);
  });

  it('a bad device string -> DEVICE', async () => {
    for (const device of ['gpu', 'cuda:', 'cuda:x', 'cpu:0', 'CUDA']) {
      expect(await codeOf(loadModel(fixture('deit_scripted.pt'), { device }))).toBe('DEVICE');
    }
  });

  it('CUDA from a CPU-only LibTorch -> DEVICE, saying so', async () => {
    if (versionInfo().cuda) {
      // A CUDA build: an index past the last GPU is the error case instead.
      await expect(loadModel(fixture('deit_scripted.pt'), { device: 'cuda:99' })).rejects.toMatchObject({
        code: 'DEVICE',
      });
      return;
    }
    expect(cudaAvailable()).toBe(false);
    await expect(loadModel(fixture('deit_scripted.pt'), { device: 'cuda' })).rejects.toMatchObject({
      code: 'DEVICE',
      message: expect.stringContaining('without CUDA'),
    });
  });

  it('a non-string path -> INVALID_ARGUMENT', async () => {
    expect(await codeOf(loadModel(42 as unknown as string))).toBe('INVALID_ARGUMENT');
  });

  it("an assert in the model's own code -> FORWARD, even when its message mentions a shape; a kernel's shape error stays INPUT_SHAPE", async () => {
    const model = await loadModel(fixture('layouts', 'needs_batch.pt'));
    const one = { data: new Float32Array(6 * 16), shape: [1, 6, 16] };
    await expect(model.forward(one)).rejects.toMatchObject({
      code: 'FORWARD',
      message: expect.stringContaining('two or more items'),
    });
    expect(await codeOf(model.forward({ data: new Float32Array(2 * 6 * 15), shape: [2, 6, 15] }))).toBe('INPUT_SHAPE');
    await model.dispose();
  });
});

describe('one list of error codes', () => {
  it('the codes native/core/errors.h raises are exactly those ERROR_CODES marks native', () => {
    const header = fs.readFileSync(path.join(repoRoot, 'native', 'core', 'errors.h'), 'utf8');
    const native = [...header.matchAll(/inline constexpr const char\* k\w+ = "([A-Z_]+)";/g)].map((m) => m[1]).sort();
    const marked = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => ERROR_CODES[c].native).sort();
    expect(native.length).toBeGreaterThan(10);
    expect(native).toEqual(marked);
  });

  it('a code outside the list becomes INTERNAL, naming it; known codes pass through', () => {
    const unknown = fromNative(Object.assign(new Error('boom'), { code: 'SOMETHING_NEW' }));
    expect(unknown.code).toBe('INTERNAL');
    expect(unknown.message).toContain("'SOMETHING_NEW'");
    expect(fromNative(Object.assign(new Error('x'), { code: 'PLAN' })).code).toBe('PLAN');
    expect(fromNative(Object.assign(new Error('x'), { code: 'toString' })).code).toBe('INTERNAL');
  });
});
