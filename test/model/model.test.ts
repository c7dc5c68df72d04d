/** Models (lib/model/model.ts) run TorchScript as PyTorch does, off the main thread: parity, introspection, save. */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, type Tensor } from '../../lib';
import { asTensor, fixture, maxAbsDiff, npy, tempDir } from '../helpers';

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
