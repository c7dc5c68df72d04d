/**
 * The concurrency contract, as documented in the README: every call on one model (calibration batches
 * included) runs through one queue, one at a time in call order; forwardSync() refuses while that queue is
 * busy; calls on different models run in parallel; dispose() lets earlier calls finish and rejects later
 * ones; models work inside worker_threads, and a worker that ends with models alive releases them.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadModel, gatherStats, nativeMemory, plan, prune, StatsCollector } from '../lib';
import { asTensor, calibrationBatches, fixture, maxAbsDiff, npy, repoRoot } from './helpers';

function runWorker(
  data: Record<string, unknown>,
  onMessage: (m: Record<string, unknown>, w: Worker) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(repoRoot, 'test', 'support', 'worker-forward.js'), { workerData: data });
    worker.on('message', (m) => onMessage(m as Record<string, unknown>, worker));
    worker.on('error', reject);
    worker.on('exit', resolve);
  });
}

describe('concurrency', () => {
  it('many forwards in flight on one model: all complete, in call order, with sequential results', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const inputs = calibrationBatches();
    const sequential: Float32Array[] = [];
    for (const x of inputs) sequential.push(asTensor(await model.forward(x)).data as Float32Array);
    const order: number[] = [];
    const parallel = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        model.forward(inputs[i % 4]).then((out) => {
          order.push(i);
          return asTensor(out).data as Float32Array;
        }),
      ),
    );
    expect(order).toEqual(Array.from({ length: 24 }, (_, i) => i));
    parallel.forEach((out, i) => expect(maxAbsDiff(out, sequential[i % 4])).toBe(0));
    await model.dispose();
  });

  it('forwards, statistics and pruning on different models at once give the sequential results', async () => {
    const names = ['deit_scripted', 'deit_traced', 'vit_torchvision'];
    const models = await Promise.all(names.map((n) => loadModel(fixture(`${n}.pt`))));
    const input = npy('input_b4.npy');
    const expected = await Promise.all(names.map((n) => npy(`out_${n}_b4.npy`)));
    const [outputs, stats] = await Promise.all([
      Promise.all(models.map((m) => m.forward(input))),
      Promise.all(models.map((m) => gatherStats(m, calibrationBatches()))),
    ]);
    outputs.forEach((o, i) =>
      expect(maxAbsDiff(asTensor(o).data as Float32Array, expected[i].data as Float32Array)).toBeLessThanOrEqual(1e-5),
    );
    // Statistics of one model gathered twice at the same time equal those gathered alone.
    const [a, b] = await Promise.all([
      gatherStats(models[0], calibrationBatches()),
      gatherStats(models[0], calibrationBatches()),
    ]);
    expect(Array.from(a.layers[1].m2)).toEqual(Array.from(stats[0].layers[1].m2));
    expect(Array.from(b.layers[2].mean)).toEqual(Array.from(stats[0].layers[2].mean));
    const pruned = await Promise.all(models.map((m, i) => prune(m, plan(stats[i], { ratio: 0.5 }))));
    expect(pruned.every((p) => p.report.neurons.after < p.report.neurons.before)).toBe(true);
    await Promise.all([...models, ...pruned.map((p) => p.model)].map((m) => m.dispose()));
  });

  it("calibration batches join the model's queue; forwardSync() refuses with BUSY while anything is queued", async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const input = npy('input_b1.npy');
    const collector = await StatsCollector.create(model);
    const order: string[] = [];
    const adding = collector.add(calibrationBatches(0, 1)[0]).then(() => order.push('batch'));
    const forward = model.forward(input).then(() => order.push('forward'));
    expect(model.pending).toBe(2);
    expect(() => model.forwardSync(input)).toThrow(expect.objectContaining({ code: 'BUSY' }));
    await Promise.all([adding, forward]);
    expect(order).toEqual(['batch', 'forward']);
    expect(asTensor(model.forwardSync(input)).shape).toEqual([1, 10]);
    await collector.finish();
    await model.dispose();
  });

  it('dispose() while work is in flight: earlier calls complete, later calls reject with DISPOSED', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const input = npy('input_b4.npy');
    const before = nativeMemory().liveModels;
    const earlier = [model.forward(input), model.forward(input), gatherStats(model, calibrationBatches(0, 1))];
    const released = model.dispose();
    await expect(model.forward(input)).rejects.toMatchObject({ code: 'DISPOSED' });
    const results = await Promise.allSettled(earlier);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    await released;
    expect(nativeMemory().liveModels).toBe(before - 1);
    await expect(model.clone()).rejects.toMatchObject({ code: 'DISPOSED' });
  });

  it('works inside worker_threads, alongside the main thread', async () => {
    const results: Float32Array[] = [];
    const main = await loadModel(fixture('deit_traced.pt'));
    const expected = asTensor(await main.forward(npy('input_b4.npy'))).data as Float32Array;
    const exits = await Promise.all(
      [0, 1].map(() =>
        runWorker(
          { model: fixture('deit_traced.pt'), input: fixture('input_b4.npy'), repeat: 3, dispose: true },
          (m) => {
            if (m.error) throw new Error(String(m.error));
            if (m.output) results.push(Float32Array.from(m.output as number[]));
          },
        ),
      ),
    );
    expect(exits).toEqual([0, 0]);
    expect(results).toHaveLength(6);
    for (const r of results) expect(maxAbsDiff(r, expected)).toBeLessThanOrEqual(1e-6);
    await main.dispose();
  });

  it('a worker terminated mid-forward with a model alive releases it and leaves the process working', async () => {
    const before = nativeMemory().liveModels;
    const exit = await runWorker(
      { model: fixture('deit_scripted.pt'), input: fixture('input_b4.npy'), repeat: 1000, dispose: false },
      (m, worker) => {
        if (m.output) void worker.terminate();
      },
    );
    expect(exit).toBe(1); // terminated
    // The worker's environment cleanup released its model (finalizers run at teardown).
    for (let i = 0; i < 50 && nativeMemory().liveModels !== before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(nativeMemory().liveModels).toBe(before);
    const model = await loadModel(fixture('deit_scripted.pt'));
    expect(asTensor(await model.forward(npy('input_b1.npy'))).shape).toEqual([1, 10]);
    await model.dispose();
  });
});
