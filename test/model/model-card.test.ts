/**
 * The model card travels with the model (lib/formats/model-card.ts, lib/model/model.ts): inside the
 * TorchScript archive (read by PyTorch too) and beside it; pruned models keep it. The CLI's use of it is in
 * test/cli/model-card.test.ts.
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
  batches,
  type ModelCard,
} from '../../lib';
import { BUNDLED_MODEL } from '../../lib/demo/run';
import { fixture, readPythonOutput, tempDir } from '../helpers';

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
