/**
 * Seeded corpora of broken model, statistics and plan files never crash the process: each case
 * either works or fails with a VbpError of a known code. VBP_FUZZ_CASES (default 150 per model) runs more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, gatherStats, plan, prune, Stats, validatePlan, VbpError, type ErrorCode, type Plan } from '../lib';
import { seededRandom } from '../lib/util/random';
import { calibrationBatches, fixture, npy, runPython, tempDir } from './helpers';

const CASES = Number(process.env.VBP_FUZZ_CASES ?? 150);
const KNOWN: ErrorCode[] = ['MODEL_LOAD', 'MODEL_NOT_FOUND', 'INPUT_SHAPE', 'INPUT_DTYPE', 'FORWARD', 'NO_MLP', 'MLP_SPEC', 'NON_FINITE', 'STATS', 'PLAN', 'PRUNE', 'IO'];

async function outcome(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (error) {
    if (!(error instanceof VbpError) || !KNOWN.includes(error.code)) throw error; // an uncoded failure is a bug
    return error.code;
  }
}

describe('fuzzing', () => {
  it.each([
    ['deit_scripted.pt', 1],
    ['vit_torchvision.pt', 2],
  ])(`${CASES} damaged copies of %s: load, forward, statistics, plan, prune never crash`, async (name, seed) => {
    const dir = tempDir('torch-vbp-fuzz-');
    runPython('fuzz_corpus.py', [fixture(name), dir, '--count', String(CASES), '--seed', String(seed)]);
    const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')) as Array<{ file: string }>;
    const input = npy('input_b1.npy');
    const calibration = calibrationBatches(0, 1);
    const tally: Record<string, number> = {};
    for (const { file } of cases) {
      const result = await outcome(async () => {
        const model = await loadModel(path.join(dir, file));
        try {
          await model.forward(input);
          const stats = await gatherStats(model, calibration);
          const { model: pruned } = await prune(model, plan(stats, { ratio: 0.5 }));
          await pruned.forward(input);
          await pruned.dispose();
        } finally {
          await model.dispose();
        }
      });
      tally[result] = (tally[result] ?? 0) + 1;
    }
    expect(Object.values(tally).reduce((a, b) => a + b, 0)).toBe(CASES);
    expect(tally.MODEL_LOAD).toBeGreaterThan(CASES / 4); // most damage is caught at load
  });

  it(`${CASES} damaged statistics files load or fail with STATS`, async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const good = (await gatherStats(model, calibrationBatches(0, 1))).toBuffer();
    const random = seededRandom(3);
    const tally: Record<string, number> = {};
    for (let n = 0; n < CASES; n++) {
      const bytes = Buffer.from(good);
      const kind = n % 3;
      let damaged: Buffer = bytes;
      if (kind === 0) for (let k = 0; k < 1 + Math.floor(random() * 8); k++) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
      else if (kind === 1) damaged = bytes.subarray(0, Math.floor(random() * bytes.length));
      else for (let k = 0; k < 4; k++) bytes[8 + Math.floor(random() * Math.min(400, bytes.length - 8))] = Math.floor(random() * 256); // the JSON header
      const result = await outcome(async () => {
        const stats = Stats.fromBuffer(damaged, `case ${n}`);
        const p = plan(stats, { ratio: 0.3 });
        const { model: pruned } = await prune(model, p, { skipMacs: true });
        await pruned.dispose();
      });
      tally[result] = (tally[result] ?? 0) + 1;
    }
    expect(tally.STATS).toBeGreaterThan(0);
    await model.dispose();
  });

  it(`${CASES} damaged plans are validated or fail with PLAN`, async () => {
    const model = await loadModel(fixture('deit_traced.pt'));
    const good = plan(await gatherStats(model, calibrationBatches(0, 1)), { ratio: 0.4 });
    const random = seededRandom(4);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const tally: Record<string, number> = {};
    for (let n = 0; n < CASES; n++) {
      const p = JSON.parse(JSON.stringify(good)) as Plan & Record<string, unknown>;
      const layer = pick(p.layers) as unknown as Record<string, unknown>;
      const field = pick(['keep', 'pruned', 'prunedMeans', 'hidden', 'fc1', 'fc2']);
      const mutation = pick(['delete', 'string', 'negative', 'huge', 'shuffle', 'nan', 'empty']);
      const value = layer[field];
      if (mutation === 'delete') delete layer[field];
      else if (mutation === 'string') layer[field] = 'x';
      else if (mutation === 'empty') layer[field] = Array.isArray(value) ? [] : '';
      else if (Array.isArray(value) && value.length) {
        const i = Math.floor(random() * value.length);
        if (mutation === 'negative') value[i] = -1;
        else if (mutation === 'huge') value[i] = 1e12;
        else if (mutation === 'nan') value[i] = Number.NaN;
        else value.reverse();
      } else if (typeof value === 'number') layer[field] = mutation === 'negative' ? -value : mutation === 'nan' ? Number.NaN : value * 1000;
      if (random() < 0.2) p.version = 2 as 1;
      const result = await outcome(async () => {
        const { model: pruned } = await prune(model, validatePlan(p), { skipMacs: true });
        await pruned.dispose();
      });
      tally[result] = (tally[result] ?? 0) + 1;
    }
    expect(tally.PLAN).toBeGreaterThan(CASES / 2);
    await model.dispose();
  });
});
