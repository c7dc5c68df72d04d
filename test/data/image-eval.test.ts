/**
 * `vbp eval` on an ImageFolder of JPEGs against a torchvision evaluation of the same TorchScript model
 * (test/python/image_eval_reference.py): the native JPEG path gives the model torchvision's input, so every
 * prediction is the same, and so is top-1.
 */
import path from 'node:path';
import { ImageFolderDataset, evaluate, loadModel } from '../../lib';
import { fixture, runPython, tempDir, vbp } from '../helpers';

describe('vbp eval on an image folder against torchvision', () => {
  it("predicts what torchvision's evaluation of the model predicts, image by image", async () => {
    const dir = tempDir('torch-vbp-image-eval-');
    runPython('image_eval_reference.py', [dir]);
    const root = path.join(dir, 'images');
    const [mean, std] = ['0.485,0.456,0.406', '0.229,0.224,0.225'];
    const theirs = JSON.parse(
      runPython('image_eval_reference.py', [fixture('deit_scripted.pt'), root, '32', '37', mean, std]),
    ) as { predictions: number[]; labels: number[]; correct1: number };
    const run = vbp([
      'eval',
      fixture('deit_scripted.pt'),
      '--data',
      root,
      '--crop',
      '32',
      '--resize',
      '37',
      '--mean',
      mean,
      '--std',
      std,
      '--batch-size',
      '8',
      '--threads',
      '1',
      '--json',
    ]);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const ours = JSON.parse(run.stdout) as { items: number; correct1: number };
    expect(ours.items).toBe(40);
    expect(ours.correct1).toBe(theirs.correct1);
    // Image by image, through the library: the same prediction for every image.
    const model = await loadModel(fixture('deit_scripted.pt'));
    const data = new ImageFolderDataset(root, { crop: 32, resize: 37 });
    const result = await evaluate(model, data, { batchSize: 8, keepLogits: true });
    await model.dispose();
    expect(Array.from(result.predictions)).toEqual(theirs.predictions);
    // A model that predicts one class for everything would make this weak: this one does not.
    expect(new Set(theirs.predictions).size).toBeGreaterThan(1);
  }, 120_000);
});
