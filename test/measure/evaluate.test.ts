/**
 * evaluate() against the model card's normalisation (issue 21, item 20): data left unnormalised, or outside
 * the range the card's normalisation gives pixels in [0, 1], is refused before any forward, not scored.
 */
import path from 'node:path';
import { DEBIAN_FASHION_MNIST, IdxDataset, evaluate, loadModel, type Dataset, type Model } from '../../lib';
import { repoRoot } from '../helpers';

const BUNDLED = path.join(repoRoot, 'models', 'deit_fmnist.pt');

/** The test images, with their pixels mapped by `f` (after the dataset's own scaling and normalisation). */
function mapped(data: Dataset, f: (x: number) => number): Dataset {
  return {
    description: data.description,
    size: data.size,
    itemShape: data.itemShape,
    labelled: true,
    read: async (i, target) => {
      const label = await data.read(i, target);
      for (let j = 0; j < target.length; j++) target[j] = f(target[j]);
      return label;
    },
  };
}

describe("evaluate() and the model card's normalisation", () => {
  let model: Model;
  const card = { mean: [0.286], std: [0.353] };
  const raw = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test');
  const normalised = IdxDataset.split(DEBIAN_FASHION_MNIST, 'test', { normalise: card });
  beforeAll(async () => {
    model = await loadModel(BUNDLED);
    expect(model.card?.mean).toEqual(card.mean);
  });
  afterAll(() => model.dispose());

  it('refuses data without the normalisation the card states (19 % when scored anyway), naming the fix', async () => {
    await expect(evaluate(model, raw, { limit: 500 })).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringMatching(
        /first batch of t10k-images.*values \[0, 1\].*maps them to \[-0\.81, 2\.02\]: give the data set that normalisation.*checkNormalisation: false/,
      ),
    });
    const scored = await evaluate(model, raw, { limit: 500, checkNormalisation: false });
    expect(scored.top1).toBeLessThan(0.3);
  });

  it('refuses pixels in 0..255 and data normalised twice', async () => {
    await expect(
      evaluate(
        model,
        mapped(raw, (x) => x * 255),
        { limit: 300 },
      ),
    ).rejects.toMatchObject({
      code: 'DATA',
      message: expect.stringMatching(
        /\[0, 255\] per channel, outside \[-0\.81, 2\.02\].*0\.\.255\? normalised twice\?/,
      ),
    });
    await expect(
      evaluate(
        model,
        mapped(normalised, (x) => (x - 0.286) / 0.353),
        { limit: 300 },
      ),
    ).rejects.toMatchObject({ code: 'DATA' });
  });

  it('accepts data normalised as the card says (and any data for a model without mean/std)', async () => {
    const result = await evaluate(model, normalised, { limit: 500, batchSize: 100 });
    expect(result.top1).toBeGreaterThan(0.85);
    const copy = await model.clone();
    copy.setCard(undefined);
    await expect(evaluate(copy, raw, { limit: 100 })).resolves.toMatchObject({ items: 100 });
    await copy.dispose();
  });
});
