/**
 * The CLI and model cards: vbp prune writes the card with the model and vbp eval of the result normalises as
 * the original; without a card (and without --mean/--std) data commands refuse and say what to pass; the CLI's
 * statistics with the card equal the library's.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  loadModel,
  gatherStats,
  readModelCard,
  IdxDataset,
  DEBIAN_FASHION_MNIST,
  Stats,
  batches,
  evaluate,
} from '../../lib';
import { BUNDLED_MODEL } from '../../lib/demo/run';
import { fixture, tempDir, vbp } from '../helpers';

const dir = tempDir('torch-vbp-card-');
const bundledCard = readModelCard(BUNDLED_MODEL)!;

describe('the CLI and model cards', () => {
  it('vbp prune writes the card with the model; vbp eval of the result normalises as the original (86 %, not 12 %)', async () => {
    const out = path.join(dir, 'cli-p50.pt');
    const pruned = vbp([
      'prune',
      BUNDLED_MODEL,
      '--data',
      'fashion-mnist',
      '--ratio',
      '0.5',
      '--limit',
      '512',
      '--out',
      out,
      '--json',
    ]);
    expect(pruned.status).toBe(0);
    expect(JSON.parse(pruned.stdout).card).toBe(path.join(dir, 'cli-p50.json'));
    const evaluated = vbp(['eval', out, '--data', 'fashion-mnist', '--limit', '1000', '--json']);
    expect(evaluated.status).toBe(0);
    const result = JSON.parse(evaluated.stdout);
    expect(result.normalisation).toBe('model card');
    // The library with the card's normalisation, on the same 1,000 images.
    const model = await loadModel(out);
    const test = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test', {
      normalise: { mean: model.card!.mean!, std: model.card!.std! },
    });
    const expected = await evaluate(model, test, { limit: 1000 });
    expect(result.correct1).toBe(expected.correct1);
    expect(result.top1).toBeGreaterThan(0.8);
    await model.dispose();
  });

  it('without a card and without --mean/--std, data commands refuse and say what to pass; --raw opts out', () => {
    const model = fixture('deit_scripted.pt'); // no card
    for (const args of [
      ['eval', model, '--data', fixture('calib.npy'), '--labels', fixture('calib.npy')],
      ['stats', model, '--data', fixture('calib.npy'), '--out', path.join(dir, 'never.safetensors')],
      ['prune', model, '--data', fixture('calib.npy'), '--ratio', '0.5', '--out', path.join(dir, 'never.pt')],
    ]) {
      const r = vbp(args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/\[INVALID_ARGUMENT\].*no model card.*--mean M --std S.*--raw/);
    }
    expect(fs.existsSync(path.join(dir, 'never.safetensors'))).toBe(false);
    const raw = vbp([
      'stats',
      model,
      '--data',
      fixture('calib.npy'),
      '--raw',
      '--limit',
      '16',
      '--out',
      path.join(dir, 'raw.safetensors'),
      '--json',
    ]);
    expect(raw.status).toBe(0);
    expect(JSON.parse(raw.stdout).normalisation).toBe('none (--raw)');
  });

  it("statistics of the CLI with the card equal the library's on the same images", async () => {
    const out = path.join(dir, 'card-stats.safetensors');
    const r = vbp([
      'stats',
      BUNDLED_MODEL,
      '--data',
      'fashion-mnist',
      '--limit',
      '128',
      '--batch-size',
      '64',
      '--no-shuffle',
      '--out',
      out,
      '--json',
    ]);
    expect(r.status).toBe(0);
    const model = await loadModel(BUNDLED_MODEL);
    const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', {
      normalise: { mean: bundledCard.mean!, std: bundledCard.std! },
    });
    const direct = await gatherStats(model, batches(train, { batchSize: 64, limit: 128 }));
    const fromCli = await Stats.load(out);
    fromCli.layers.forEach((l, i) => expect(Array.from(l.m2)).toEqual(Array.from(direct.layers[i].m2)));
    await model.dispose();
  });
});
