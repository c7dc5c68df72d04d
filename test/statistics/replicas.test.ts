/**
 * Calibration on several devices in one process (lib/statistics/replicas.ts, tested with ['cpu', 'cpu']):
 * replicas share the batches and merge to one pass's statistics up to float64 rounding; maxBatches, abort
 * and bad device lists. vbp stats --shard and --devices are in test/cli/stats-shards.test.ts.
 */
import { gatherStats, loadModel, nativeMemory, Stats, type Model, type Tensor } from '../../lib';
import { codeOf, fixture, maxRelDiff, npy } from '../helpers';

/** The 64 calibration images of the fixtures as 8 batches of 8. */
function eightBatches(): Tensor[] {
  const calib = npy('calib.npy');
  const per = 3 * 32 * 32;
  return Array.from({ length: 8 }, (_, i) => ({
    data: (calib.data as Float32Array).slice(i * 8 * per, (i + 1) * 8 * per),
    shape: [8, 3, 32, 32],
  }));
}

function expectSameStats(a: Stats, b: Stats, tolerance = 1e-12): void {
  expect(a.info).toMatchObject({
    batches: b.info.batches,
    items: b.info.items,
    modelMacs: b.info.modelMacs,
    modelParams: b.info.modelParams,
  });
  a.layers.forEach((layer, i) => {
    const other = b.layers[i];
    expect(layer.count).toBe(other.count);
    expect(maxRelDiff(layer.mean, other.mean, 1e-9)).toBeLessThanOrEqual(tolerance);
    expect(maxRelDiff(layer.m2, other.m2, 1e-9)).toBeLessThanOrEqual(tolerance);
    if (other.comoment) expect(maxRelDiff(a.covariance(i), b.covariance(i), 1e-9)).toBeLessThanOrEqual(1e-10);
  });
}

describe('gatherStats on several devices', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(fixture('deit_scripted.pt'));
  });
  afterAll(async () => {
    await model.dispose();
  });

  it("['cpu', 'cpu']: two replicas share the batches and merge to one pass's statistics (covariance too); the copy is released", async () => {
    const batches = eightBatches();
    const single = await gatherStats(model, batches, { covariance: true });
    const live = nativeMemory().liveModels;
    const progress: number[] = [];
    const spread = await gatherStats(model, batches, {
      covariance: true,
      devices: ['cpu', 'cpu'],
      onProgress: (p) => progress.push(p.batches),
    });
    expectSameStats(spread, single);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(nativeMemory().liveModels).toBe(live);
  });

  it('maxBatches, abort with partial statistics, and bad device lists', async () => {
    const batches = eightBatches();
    const limited = await gatherStats(model, batches, { devices: ['cpu', 'cpu'], maxBatches: 3 });
    expect(limited.info.batches).toBe(3);
    const controller = new AbortController();
    const error = await gatherStats(model, batches, {
      devices: ['cpu', 'cpu', 'cpu'],
      signal: controller.signal,
      onProgress: (p) => p.batches === 2 && controller.abort(),
    }).catch((e: { code: string; partial?: Stats }) => e);
    expect((error as { code: string }).code).toBe('ABORTED');
    expect((error as { partial?: Stats }).partial?.info.batches).toBeGreaterThanOrEqual(2);
    for (const devices of [[], ['tpu'], 'cpu', [1]])
      expect(await codeOf(gatherStats(model, batches, { devices: devices as string[] }))).toMatch(
        /INVALID_ARGUMENT|DEVICE/,
      );
    expect(await codeOf(gatherStats(model, batches, { devices: ['cpu'], resume: limited }))).toBe('INVALID_ARGUMENT');
  });
});
