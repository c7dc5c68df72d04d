/** The addon runs TorchScript models like PyTorch does, off the main thread. */
import fs from 'node:fs';
import { native } from '../lib/native/addon';
import path from 'node:path';
import {
  loadModel,
  versionInfo,
  cudaAvailable,
  cudaDeviceCount,
  getNumThreads,
  getBlasThreads,
  setNumThreads,
  setAllowTF32,
  getAllowTF32,
  tensor,
  type Tensor,
} from '../lib';
import { asTensor, fixture, maxAbsDiff, npy, tempDir } from './helpers';

const MODELS = ['deit_scripted', 'deit_traced', 'vit_torchvision'];

describe('parity with PyTorch', () => {
  for (const name of MODELS) {
    for (const batch of [1, 4]) {
      it(`${name} at batch ${batch} matches torch.jit.load's output (max abs diff <= 1e-5)`, async () => {
        const model = await loadModel(fixture(`${name}.pt`));
        const output = asTensor(await model.forward(npy(`input_b${batch}.npy`)));
        const expected = npy(`out_${name}_b${batch}.npy`);
        expect(output.shape).toEqual(expected.shape);
        expect(output.dtype).toBe('float32');
        expect(maxAbsDiff(output.data as Float32Array, expected.data as Float32Array)).toBeLessThanOrEqual(1e-5);
        model.dispose();
      });
    }
  }
});

describe('introspection, clone, save, dispose', () => {
  it('lists submodules with type names and parameters with shapes and counts', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const modules = model.submodules();
    expect(modules.find((m) => m.name === 'blocks.0.mlp.fc1')?.type).toBe('torch.nn.modules.linear.Linear');
    expect(modules.find((m) => m.name === 'blocks.0.mlp.act')?.type).toBe('torch.nn.modules.activation.GELU');
    const params = model.parameters();
    const fc1 = params.find((p) => p.name === 'blocks.0.mlp.fc1.weight');
    expect(fc1).toEqual({ name: 'blocks.0.mlp.fc1.weight', shape: [192, 48], numel: 9216, dtype: 'float32' });
    expect(model.parameterCount()).toBe(95530); // torch: sum(p.numel() for p in model.parameters())
    expect(model.summary()).toMatchObject({ device: 'cpu', parameters: 95530 });
    model.dispose();
  });

  it('clone() is independent of the original and computes the same', async () => {
    const model = await loadModel(fixture('deit_traced.pt'));
    const copy = await model.clone();
    const input = npy('input_b4.npy');
    const a = asTensor(await model.forward(input));
    model.dispose();
    const b = asTensor(await copy.forward(input));
    expect(maxAbsDiff(a.data as Float32Array, b.data as Float32Array)).toBe(0);
    copy.dispose();
  });

  it('save() writes atomically a file that loads back with the same outputs', async () => {
    const dir = tempDir();
    const model = await loadModel(fixture('deit_scripted.pt'));
    const target = path.join(dir, 'copy.pt');
    await model.save(target);
    expect(fs.readdirSync(dir)).toEqual(['copy.pt']); // no temporary file left behind
    const again = await loadModel(target);
    const input = npy('input_b1.npy');
    const a = asTensor(await model.forward(input));
    const b = asTensor(await again.forward(input));
    expect(maxAbsDiff(a.data as Float32Array, b.data as Float32Array)).toBe(0);
    await expect(model.save(target, { overwrite: false })).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
    await expect(model.save(path.join(dir, 'no-such-dir', 'x.pt'))).rejects.toMatchObject({ code: 'IO' });
    expect(fs.readdirSync(dir)).toEqual(['copy.pt']);
    model.dispose();
    again.dispose();
  });

  it('maps tuple, list and dict outputs to arrays and objects', async () => {
    const model = await loadModel(fixture('mlp_variants', 'a_relu_updown_scripted.pt'));
    const out = asTensor(await model.forward(npy('mlp_variants', 'variant_input.npy')));
    expect(out.shape).toEqual([2, 5, 16]);
    model.dispose();
  });

  it('reports version and device facts of the linked LibTorch', () => {
    const info = versionInfo();
    expect(info.torch).toMatch(/^\d+\.\d+/);
    expect(typeof info.cuda).toBe('boolean');
    expect(cudaDeviceCount()).toBe(cudaAvailable() ? cudaDeviceCount() : 0);
    expect(getNumThreads()).toBe(1);
    expect(fs.existsSync(info.addon)).toBe(true);
  });

  it('checks at load that the LibTorch the process loaded is the one the addon was built against', () => {
    const info = versionInfo();
    // Here they agree (Debian's 1.13 both ways); the loaded one is read from its own build settings.
    expect(info.linkedTorch.split('.').slice(0, 2)).toEqual(info.torch.split('.').slice(0, 2));
    const check = (config: string, compiled: string, cuda: boolean) =>
      native().linkedTorchMismatch(config, compiled, cuda);
    expect(check('Build settings: TORCH_VERSION=1.13.1, USE_CUDA=OFF, USE_CUDNN=OFF', '1.13.0', false)).toBe('');
    expect(check('Build settings: TORCH_VERSION=2.5.1, USE_CUDA=ON', '1.13.0', false)).toMatch(
      /built against LibTorch 1\.13\.0 but the process loaded LibTorch 2\.5\.1; rebuild/,
    );
    expect(check('TORCH_VERSION=2.4.0, USE_CUDA=OFF', '2.4.0', true)).toMatch(
      /CUDA LibTorch 2\.4\.0 but the process loaded a CPU-only LibTorch 2\.4\.0/,
    );
    expect(check('no settings here', '1.13.0', false)).toBe('');
  });

  it("setNumThreads() reaches OpenBLAS too (Debian's LibTorch uses it; it ignores torch's own setting)", () => {
    // The suite runs on Debian's LibTorch, which links OpenBLAS (-1 would mean none was found).
    expect(getBlasThreads()).toBe(1);
    try {
      setNumThreads(2);
      expect(getBlasThreads()).toBe(2);
      setNumThreads(1);
      expect(getBlasThreads()).toBe(1);
    } finally {
      setNumThreads(1);
    }
  });

  it("setAllowTF32() sets LibTorch's TF32 flags (defaults: matmul off, cuDNN on, as in PyTorch), only those given", () => {
    expect(getAllowTF32()).toEqual({ matmul: false, cudnn: true });
    try {
      expect(setAllowTF32({ cudnn: false })).toEqual({ matmul: false, cudnn: false });
      expect(setAllowTF32({ matmul: true })).toEqual({ matmul: true, cudnn: false });
      expect(getAllowTF32()).toEqual({ matmul: true, cudnn: false });
    } finally {
      setAllowTF32({ matmul: false, cudnn: true });
    }
    expect(getAllowTF32()).toEqual({ matmul: false, cudnn: true });
    expect(() => setAllowTF32({ cuBLAS: false } as never)).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining("unknown option 'cuBLAS'"),
      }),
    );
    expect(() => setAllowTF32({ matmul: 'no' } as never)).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('matmul must be true or false'),
      }),
    );
  });

  it('tensor() checks that data fits the shape', () => {
    expect(tensor([1, 2, 3, 4, 5, 6], [2, 3]).shape).toEqual([2, 3]);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(expect.objectContaining({ code: 'INPUT_SHAPE' }));
  });
});

describe('the event loop keeps running', () => {
  it('a timer fires while a long forward runs on the thread pool', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const batch = 1024;
    const one = npy('input_b1.npy').data as Float32Array;
    const data = new Float32Array(batch * one.length);
    for (let i = 0; i < batch; i++) data.set(one, i * one.length);
    const input: Tensor = { data, shape: [batch, 3, 32, 32] };
    await model.forward({ data: one, shape: [1, 3, 32, 32] }); // warm-up

    const tickTimes: number[] = [];
    const timer = setInterval(() => tickTimes.push(performance.now()), 2);
    const started = performance.now();
    const output = asTensor(await model.forward(input));
    const ended = performance.now();
    clearInterval(timer);
    const elapsed = ended - started;

    expect(output.shape).toEqual([batch, 10]);
    expect(elapsed).toBeGreaterThan(40); // long enough for the test to mean something
    // A blocked loop gives 0 or 1 tick and one gap as long as the forward. Ticks keep coming here; a garbage
    // collection of the test process's own heap can pause them for a while (seen: 120 ms in a full run), so
    // the check is that no pause covers most of the forward.
    const stamps = [started, ...tickTimes, ended];
    const longestGap = Math.max(...stamps.slice(1).map((t, i) => t - stamps[i]));
    expect(tickTimes.length).toBeGreaterThanOrEqual(3);
    expect(longestGap).toBeLessThan(0.8 * elapsed);
    model.dispose();
  });
});
