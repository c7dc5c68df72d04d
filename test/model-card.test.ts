/**
 * The model card travels with the model: inside the TorchScript archive (read by PyTorch too) and beside
 * it; pruned models keep it; and the CLI never normalises data by guesswork when there is none.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  loadModel,
  gatherStats,
  plan,
  prune,
  readModelCard,
  formatNpy,
  IdxDataset,
  DEBIAN_FASHION_MNIST,
  Stats,
  batches,
  evaluate,
  type ModelCard,
} from '../lib';
import { BUNDLED_MODEL } from '../lib/demo/run';
import { fixture, readPythonOutput, tempDir, vbp } from './helpers';

const dir = tempDir('torch-vbp-card-');
const bundledCard = readModelCard(BUNDLED_MODEL)!;

describe('model cards in the library', () => {
  it('the bundled model carries its card inside the archive too, so a lone copy of the file has it', async () => {
    const copy = path.join(dir, 'copy.pt');
    fs.copyFileSync(BUNDLED_MODEL, copy);
    const model = await loadModel(copy);
    expect(model.card).toEqual(bundledCard);
    expect(model.card?.mean).toEqual([0.286]);
    await model.dispose();
  });

  it('prune() keeps the card and notes the pruning; save() writes it inside and beside; PyTorch reads the inside one', async () => {
    const model = await loadModel(BUNDLED_MODEL);
    const train = IdxDataset.split(DEBIAN_FASHION_MNIST, 'train', {
      normalise: { mean: model.card!.mean!, std: model.card!.std! },
    });
    const stats = await gatherStats(model, batches(train, { batchSize: 128, limit: 256 }));
    const { model: pruned } = await prune(model, plan(stats, { ratio: 0.5 }));
    const card = pruned.card!;
    expect(card.inputShape).toEqual([1, 28, 28]);
    expect(card.mean).toEqual(bundledCard.mean);
    expect(card.pruning).toEqual([
      expect.objectContaining({
        tool: 'torch-vbp',
        criterion: 'variance',
        compensation: 'mean',
        neurons: { before: 768, after: 384 },
      }),
    ]);
    const out = path.join(dir, 'p50.pt');
    await pruned.save(out);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'p50.json'), 'utf8'))).toEqual(card);
    const input = path.join(dir, 'fmnist_input.npy');
    fs.writeFileSync(input, formatNpy({ data: new Float32Array(2 * 28 * 28).fill(0.1), shape: [2, 1, 28, 28] }));
    const python = readPythonOutput(out, input);
    expect(python.card).toEqual(card);
    // Read back from the archive alone, and from beside it when both exist (the editable copy wins).
    const alone = path.join(tempDir('torch-vbp-card-alone-'), 'p50.pt');
    fs.copyFileSync(out, alone);
    const reloaded = await loadModel(alone);
    expect(reloaded.card).toEqual(card);
    fs.writeFileSync(path.join(dir, 'p50.json'), JSON.stringify({ ...card, note: 'edited' }));
    const edited = await loadModel(out);
    expect(edited.card?.note).toBe('edited');
    const without = await loadModel(out, { card: false });
    expect(without.card).toBeUndefined();
    await Promise.all([model, pruned, reloaded, edited, without].map((m) => m.dispose()));
  });

  it('a model without a card saves none; setCard() checks what it is given', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    expect(model.card).toBeUndefined();
    const out = path.join(dir, 'plain.pt');
    await model.save(out);
    expect(fs.existsSync(path.join(dir, 'plain.json'))).toBe(false);
    expect(readPythonOutput(out, fixture('input_b1.npy')).card).toBeNull();
    expect(() => model.setCard({ mean: [0.5], std: [0] } as ModelCard)).toThrow(
      expect.objectContaining({ code: 'DATA', message: expect.stringContaining('std') }),
    );
    model.setCard({ inputShape: [3, 32, 32], mean: [0.5], std: [0.25] });
    await model.save(out, { cardBeside: false });
    expect(fs.existsSync(path.join(dir, 'plain.json'))).toBe(false);
    const again = await loadModel(out);
    expect(again.card).toEqual({ inputShape: [3, 32, 32], mean: [0.5], std: [0.25] });
    await Promise.all([model.dispose(), again.dispose()]);
  });

  it('a malformed card beside a model is DATA naming the file; an unreadable one IO', async () => {
    const file = path.join(dir, 'badcard.pt');
    fs.copyFileSync(fixture('deit_scripted.pt'), file);
    fs.writeFileSync(path.join(dir, 'badcard.json'), '{ not json');
    await expect(loadModel(file)).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringContaining('badcard.json'),
    });
    fs.rmSync(path.join(dir, 'badcard.json'));
    fs.mkdirSync(path.join(dir, 'badcard.json'));
    await expect(loadModel(file)).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringContaining('badcard.json'),
    });
  });
});

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
