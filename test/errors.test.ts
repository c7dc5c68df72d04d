/** Issue 2: every failure is a VbpError with a stable code and a useful message. */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, VbpError, cudaAvailable, versionInfo, tensor } from '../lib';
import { fixture, npy, tempDir } from './helpers';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VbpError);
    expect((error as Error).message).not.toMatch(/frame #|Exception raised from/); // no C++ backtraces
    return (error as VbpError).code;
  }
  throw new Error('expected a rejection');
}

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
    expect(await codeOf(model.forward({ data: new Float64Array(3 * 32 * 32), shape: [1, 3, 32, 32] }))).toBe('INPUT_DTYPE');
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
      await expect(loadModel(fixture('deit_scripted.pt'), { device: 'cuda:99' })).rejects.toMatchObject({ code: 'DEVICE' });
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
});
