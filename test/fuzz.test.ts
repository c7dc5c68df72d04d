/**
 * Seeded corpora of broken model, statistics and plan files never crash the process: each case
 * either works or fails with a VbpError of a known code. VBP_FUZZ_CASES (default 150 per model) runs more.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  loadModel,
  gatherStats,
  plan,
  prune,
  readTensors,
  Stats,
  validatePlan,
  VbpError,
  writeTensors,
  type ErrorCode,
  type Plan,
} from '../lib';
import { writeZip, ZipReader } from '../lib/formats/zip';
import { seededRandom } from '../lib/util/random';
import { calibrationBatches, fixture, npy, runPython, tempDir } from './helpers';

const CASES = Number(process.env.VBP_FUZZ_CASES ?? 150);
const KNOWN: ErrorCode[] = [
  'MODEL_LOAD',
  'MODEL_NOT_FOUND',
  'INPUT_SHAPE',
  'INPUT_DTYPE',
  'FORWARD',
  'NO_MLP',
  'MLP_SPEC',
  'NON_FINITE',
  'STATS',
  'PLAN',
  'PRUNE',
  'IO',
];

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
      if (kind === 0)
        for (let k = 0; k < 1 + Math.floor(random() * 8); k++)
          bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
      else if (kind === 1) damaged = bytes.subarray(0, Math.floor(random() * bytes.length));
      else
        for (let k = 0; k < 4; k++)
          // the JSON header
          bytes[8 + Math.floor(random() * Math.min(400, bytes.length - 8))] = Math.floor(random() * 256);
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
      } else if (typeof value === 'number')
        layer[field] = mutation === 'negative' ? -value : mutation === 'nan' ? Number.NaN : value * 1000;
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

  it(`${CASES} damaged copies of each tensor file (torch.save, .npz, .npy, .safetensors) read or fail with DATA`, async () => {
    const dir = tempDir('torch-vbp-fuzz-tensors-');
    runPython('testing_corpus.py', ['files', dir]);
    const files = path.join(dir, 'files');
    await writeTensors(path.join(dir, 'ours.safetensors'), {
      a: { data: new Float32Array([1, 2, 3]), shape: [3] },
      b: { data: new Uint16Array(4), shape: [2, 2], dtype: 'bfloat16' },
    });
    const originals = [
      'float32-state_dict.pt',
      'float16-views.pt',
      'int64-dict.pt',
      'bool-shared.pt',
      'arrays.npz',
      'arrays-compressed.npz',
      'float32.npy',
    ]
      .map((f) => path.join(files, f))
      .concat(path.join(dir, 'ours.safetensors'));
    const random = seededRandom(14);
    const pick = (n: number): number => Math.floor(random() * n);
    const tally: Record<string, number> = {};
    for (const original of originals) {
      const good = fs.readFileSync(original);
      for (let n = 0; n < CASES; n++) {
        let bytes: Buffer = Buffer.from(good);
        const kind = n % 4;
        if (kind === 0) for (let k = 0; k < 1 + pick(8); k++) bytes[pick(bytes.length)] ^= 1 << pick(8);
        else if (kind === 1) bytes = bytes.subarray(0, pick(bytes.length));
        else if (kind === 2) {
          // zip structure: a 2- or 4-byte field of the central directory or end record (offsets, sizes, counts)
          const from = Math.max(0, bytes.length - 22 - 46 * 8);
          const at = from + pick(bytes.length - from - 4);
          if (random() < 0.5) bytes.writeUInt32LE(pick(2 ** 32), at);
          else bytes.writeUInt16LE(pick(2 ** 16), at);
        } else if (original.endsWith('.pt')) {
          // the pickle, with valid checksums: what the unpickler itself makes of damage
          const zip = new ZipReader(good, original, 'torch.save file');
          const entries = zip.entries.map((e) => ({ name: e.name, data: Buffer.from(zip.read(e)) }));
          const pickle = entries.find((e) => e.name.endsWith('data.pkl'))!.data;
          for (let k = 0; k < 1 + pick(4); k++) pickle[pick(pickle.length)] = pick(256);
          bytes = writeZip(entries);
        } else for (let k = 0; k < 4; k++) bytes[pick(Math.min(bytes.length, 200))] = pick(256); // headers
        const file = path.join(dir, `case${path.extname(original)}`);
        fs.writeFileSync(file, bytes);
        let result: string;
        try {
          await readTensors(file);
          result = 'ok';
        } catch (error) {
          if (!(error instanceof VbpError) || !['DATA', 'IO'].includes(error.code))
            throw new Error(`${path.basename(original)} case ${n}: ${String(error)}`, { cause: error });
          expect(error.message).toContain(file);
          result = error.code;
        }
        tally[result] = (tally[result] ?? 0) + 1;
      }
    }
    expect(tally.DATA).toBeGreaterThan(originals.length * CASES * 0.5);
  });
});
