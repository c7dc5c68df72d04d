/** MLP blocks are found by graph structure, whatever their names, in scripted and traced models. */
import { loadModel, type MlpBlock } from '../../lib';
import { fixture, json } from '../helpers';

interface Expected {
  file: string;
  mlps: Array<Pick<MlpBlock, 'fc1' | 'fc2' | 'hidden' | 'activation'>>;
}

describe('MLP discovery by structure', () => {
  const expected = json<Expected[]>('mlp_variants', 'expected.json');

  it('covers every variant written by test/python/make_fixtures.py', () => {
    expect(expected.length).toBeGreaterThanOrEqual(14);
    expect(expected.filter((e) => e.mlps.length === 0).length).toBeGreaterThanOrEqual(4);
  });

  for (const { file, mlps } of json<Expected[]>('mlp_variants', 'expected.json')) {
    it(`${file}: ${mlps.length ? mlps.map((m) => `${m.fc1}->${m.fc2} (${m.activation})`).join(', ') : 'no MLP block'}`, async () => {
      const model = await loadModel(fixture('mlp_variants', file));
      if (mlps.length === 0) {
        await expect(model.mlps()).rejects.toMatchObject({ code: 'NO_MLP' });
      } else {
        const found = await model.mlps();
        expect(found.map(({ fc1, fc2, hidden, activation }) => ({ fc1, fc2, hidden, activation }))).toEqual(mlps);
      }
      model.dispose();
    });
  }

  it.each([
    ['deit_scripted.pt', 'blocks', 'mlp.fc1', 'mlp.fc2', 3, 192],
    ['deit_traced.pt', 'blocks', 'mlp.fc1', 'mlp.fc2', 3, 192],
    ['vit_torchvision.pt', 'encoder.layers.encoder_layer_', 'mlp.0', 'mlp.3', 2, 64],
  ])('%s: every transformer block, timm and torchvision naming', async (file, prefix, fc1, fc2, depth, hidden) => {
    const model = await loadModel(fixture(file));
    const found = await model.mlps();
    expect(found).toHaveLength(depth);
    found.forEach((block, i) => {
      const base = prefix.endsWith('_') ? `${prefix}${i}` : `${prefix}.${i}`;
      expect(block).toMatchObject({ fc1: `${base}.${fc1}`, fc2: `${base}.${fc2}`, hidden, activation: 'gelu' });
      expect(block.inFeatures).toBe(block.outFeatures);
    });
    model.dispose();
  });

  it('accepts an explicit list and checks it', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const one = await model.mlps([{ fc1: 'blocks.1.mlp.fc1', fc2: 'blocks.1.mlp.fc2' }]);
    expect(one).toEqual([expect.objectContaining({ fc1: 'blocks.1.mlp.fc1', hidden: 192, activation: 'gelu' })]);
    // Two Linears of matching width that the search did not pair: accepted on the user's word, marked.
    const qkvProj = await model.mlps([{ fc1: 'blocks.0.attn.proj', fc2: 'blocks.0.mlp.fc1' }]);
    expect(qkvProj[0].activation).toBe('unverified');
    await expect(model.mlps([{ fc1: 'blocks.0.mlp.fc1', fc2: 'head' }])).rejects.toMatchObject({ code: 'MLP_SPEC' });
    await expect(model.mlps([{ fc1: 'blocks.0.norm1', fc2: 'blocks.0.mlp.fc2' }])).rejects.toMatchObject({
      code: 'MLP_SPEC',
    });
    await expect(model.mlps([{ fc1: 'nope', fc2: 'blocks.0.mlp.fc2' }])).rejects.toMatchObject({ code: 'MLP_SPEC' });
    await expect(model.mlps([{ fc1: 'blocks.0.mlp.fc1' } as never])).rejects.toMatchObject({ code: 'MLP_SPEC' });
    await expect(model.mlps([])).rejects.toMatchObject({ code: 'NO_MLP' });
    model.dispose();
  });
});
