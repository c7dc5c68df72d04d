/** Every kind of bad input gives a coded error, leaves no partial file and never touches the model file. */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  loadModel,
  gatherStats,
  plan,
  prune,
  Stats,
  loadPlan,
  savePlan,
  CalibrationError,
  ImageFolderDataset,
  type Tensor,
} from '../lib';
import { calibrationBatches, codeOf, fixture, npy, runPython, sha, tempDir } from './helpers';

const dir = tempDir('torch-vbp-bad-');

describe('bad model files', () => {
  const original = fs.readFileSync(fixture('deit_scripted.pt'));
  const cases: Array<[string, () => Buffer | null, string]> = [
    ['missing', () => null, 'MODEL_NOT_FOUND'],
    ['empty', () => Buffer.alloc(0), 'MODEL_LOAD'],
    ['truncated to half', () => original.subarray(0, original.length / 2), 'MODEL_LOAD'],
    ['truncated by one byte', () => original.subarray(0, original.length - 1), 'MODEL_LOAD'],
    ['random bytes', () => crypto.randomBytes(4096), 'MODEL_LOAD'],
    ['text', () => Buffer.from('def forward(self, x): return x\n'), 'MODEL_LOAD'],
  ];
  it.each(cases)('%s -> %s', async (name, make, code) => {
    const file = path.join(dir, `${name.replace(/ /g, '-')}.pt`);
    const bytes = make();
    if (bytes) fs.writeFileSync(file, bytes);
    expect(await codeOf(loadModel(file))).toBe(code);
  });

  it('a zip that is not TorchScript, a torch.save() file and an eager pickle -> MODEL_LOAD with a hint', async () => {
    runPython('fuzz_corpus.py', [fixture('deit_scripted.pt'), path.join(dir, 'unused'), '--count', '1']); // python works
    const script = `
import zipfile, torch, torch.nn as nn, sys
out = sys.argv[1]
with zipfile.ZipFile(out + '/zip.pt', 'w') as z: z.writestr('archive/hello.txt', 'hi')
torch.save({'w': torch.zeros(3)}, out + '/state.pt')
torch.save(nn.Linear(2, 2), out + '/eager.pt')`;
    fs.writeFileSync(path.join(dir, 'make.py'), script);
    execFileSync('/usr/bin/python3', [path.join(dir, 'make.py'), dir]);
    for (const name of ['zip.pt', 'state.pt', 'eager.pt']) {
      await expect(loadModel(path.join(dir, name))).rejects.toMatchObject({
        code: 'MODEL_LOAD',
        message: expect.stringContaining('torch.jit'),
      });
    }
  });

  it('a damaged tensor record (shorter than the tensor) is refused instead of crashing a later forward', async () => {
    const out = path.join(dir, 'short');
    runPython('fuzz_corpus.py', [fixture('deit_scripted.pt'), out, '--count', '0']);
    const script = `
import zipfile, sys
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, 'w') as w:
    for info in z.infolist():
        data = z.read(info.filename)
        w.writestr(info.filename, data[:8] if info.filename.endswith('/data/3') else data)`;
    fs.writeFileSync(path.join(dir, 'short.py'), script);
    execFileSync('/usr/bin/python3', [
      path.join(dir, 'short.py'),
      fixture('deit_scripted.pt'),
      path.join(dir, 'short.pt'),
    ]);
    await expect(loadModel(path.join(dir, 'short.pt'))).rejects.toMatchObject({
      code: 'MODEL_LOAD',
      message: expect.stringContaining('damaged'),
    });
  });
});

describe('bad inputs and data', () => {
  it('wrong rank, shape and dtype give INPUT_SHAPE / INPUT_DTYPE; non-tensors give INPUT', async () => {
    const model = await loadModel(fixture('deit_traced.pt'));
    expect(await codeOf(model.forward({ data: new Float32Array(3 * 32 * 32), shape: [3, 32, 32] }))).toBe(
      'INPUT_SHAPE',
    );
    expect(await codeOf(model.forward({ data: new Float32Array(4 * 32 * 32), shape: [1, 4, 32, 32] }))).toBe(
      'INPUT_SHAPE',
    );
    expect(await codeOf(model.forward({ data: new Int32Array(3 * 32 * 32), shape: [1, 3, 32, 32] }))).toBe(
      'INPUT_DTYPE',
    );
    expect(await codeOf(model.forward({ data: new Float32Array(4), shape: [2, -2] }))).toBe('INPUT_SHAPE');
    expect(await codeOf(model.forward({ data: [1, 2, 3] as unknown as Float32Array, shape: [3] }))).toBe('INPUT');
    expect(await codeOf(model.forward(42 as unknown as Tensor))).toBe('INPUT');
    await model.dispose();
  });

  it('NaN/Inf in the inputs: the statistics name the layers that saw them and plan() refuses with NON_FINITE', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const [clean, dirty] = calibrationBatches(0, 2);
    dirty.data[5] = Number.NaN;
    const stats = await gatherStats(model, [clean, dirty]);
    expect(stats.nonFiniteLayers().map((l) => l.fc1)).toEqual([
      'blocks.0.mlp.fc1',
      'blocks.1.mlp.fc1',
      'blocks.2.mlp.fc1',
    ]);
    expect(stats.layers[0].nonFinite).toBeGreaterThan(0);
    expect(() => plan(stats, { ratio: 0.5 })).toThrow(
      expect.objectContaining({ code: 'NON_FINITE', message: expect.stringContaining('blocks.0.mlp.fc1') }),
    );
    const finite = await gatherStats(model, [clean]);
    expect(finite.nonFiniteLayers()).toEqual([]);
    await model.dispose();
  });

  it('an error in one batch keeps the statistics of the batches before it', async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    const [a, b] = calibrationBatches(0, 2);
    const broken: Tensor = { data: new Float32Array(16 * 3 * 16 * 16), shape: [16, 3, 16, 16] };
    let error: unknown;
    try {
      await gatherStats(model, [a, b, broken]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CalibrationError);
    expect((error as CalibrationError).code).toBe('INPUT_SHAPE');
    expect((error as CalibrationError).partial?.info.batches).toBe(2);
    await model.dispose();
  });
});

describe('bad plans, statistics and outputs', () => {
  let stats: Stats;
  beforeAll(async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    stats = await gatherStats(model, calibrationBatches(0, 2));
    await model.dispose();
  });

  it('ratios out of range and plans removing every neuron of a block -> PLAN', async () => {
    for (const ratio of [-0.5, 1, 2, Number.POSITIVE_INFINITY])
      expect(() => plan(stats, { ratio })).toThrow(expect.objectContaining({ code: 'PLAN' }));
    const p = plan(stats, { ratio: 0.5 });
    p.layers[1].pruned = [...Array(192).keys()];
    p.layers[1].keep = [];
    p.layers[1].prunedMeans = p.layers[1].pruned.map(() => 0);
    const model = await loadModel(fixture('deit_scripted.pt'));
    await expect(prune(model, p)).rejects.toMatchObject({
      code: 'PLAN',
      message: expect.stringContaining('keeps no neuron'),
    });
    await model.dispose();
  });

  it('statistics of another model -> STATS on resume, PLAN on prune', async () => {
    const other = await loadModel(fixture('vit_torchvision.pt'));
    await expect(gatherStats(other, calibrationBatches(0, 1), { resume: stats })).rejects.toMatchObject({
      code: 'STATS',
    });
    await expect(prune(other, plan(stats, { ratio: 0.3 }))).rejects.toMatchObject({ code: 'PLAN' });
    await other.dispose();
  });

  it('corrupt statistics and plan files -> STATS / PLAN naming the file', async () => {
    const good = path.join(dir, 'stats.safetensors');
    await stats.save(good);
    const bytes = fs.readFileSync(good);
    const variants: Array<[string, Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['short', bytes.subarray(0, 5)],
      ['truncated', bytes.subarray(0, bytes.length - 100)],
      ['huge header length', Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), bytes.subarray(8)])],
      [
        'not json',
        Buffer.concat([
          bytes.subarray(0, 8),
          Buffer.alloc(bytes.readUInt32LE(0), 0x41),
          bytes.subarray(8 + bytes.readUInt32LE(0)),
        ]),
      ],
    ];
    for (const [name, content] of variants) {
      const file = path.join(dir, `${name.replace(/ /g, '-')}.safetensors`);
      fs.writeFileSync(file, content);
      await expect(Stats.load(file)).rejects.toMatchObject({ code: 'STATS', message: expect.stringContaining(file) });
    }
    const planFile = path.join(dir, 'plan.json');
    await savePlan(plan(stats, { ratio: 0.4 }), planFile);
    const text = fs.readFileSync(planFile, 'utf8');
    for (const [name, content] of [
      ['cut', text.slice(0, text.length / 2)],
      ['wrong version', text.replace('"version": 1', '"version": 7')],
      ['index out of range', text.replace(/"keep": \[\n\s+0,/, '"keep": [\n  999,')],
    ]) {
      const file = path.join(dir, `${name.replace(/ /g, '-')}.json`);
      fs.writeFileSync(file, content);
      await expect(loadPlan(file)).rejects.toMatchObject({ code: 'PLAN' });
    }
  });

  it('unwritable and existing output paths -> IO / OUTPUT_EXISTS, with no partial file; the model file is never modified', async () => {
    const input = path.join(dir, 'model.pt');
    fs.copyFileSync(fixture('deit_scripted.pt'), input);
    const digest = sha(input);
    const model = await loadModel(input);
    const notADir = path.join(dir, 'file-not-dir');
    fs.writeFileSync(notADir, 'x');
    await expect(model.save(path.join(notADir, 'out.pt'))).rejects.toMatchObject({ code: 'IO' });
    await expect(model.save(path.join(dir, 'missing-dir', 'out.pt'))).rejects.toMatchObject({ code: 'IO' });
    await expect(model.save(dir)).rejects.toMatchObject({ code: 'IO' });
    await expect(stats.save(input, { overwrite: false })).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
    const { model: pruned } = await prune(
      model,
      plan(await gatherStats(model, calibrationBatches(0, 1)), { ratio: 0.5 }),
    );
    await expect(pruned.save(input, { overwrite: false })).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(sha(input)).toBe(digest);
    await Promise.all([model.dispose(), pruned.dispose()]);
  });

  it('a CUDA device out of range -> DEVICE', async () => {
    expect(await codeOf(loadModel(fixture('deit_scripted.pt'), { device: 'cuda:7' }))).toBe('DEVICE');
    expect(await codeOf(loadModel(fixture('deit_scripted.pt'), { device: 'cuda:99999' }))).toBe('DEVICE');
  });

  it('a model without MLP blocks -> NO_MLP', async () => {
    const model = await loadModel(fixture('mlp_variants', 'f_layernorm_between_traced.pt'));
    expect(await codeOf(gatherStats(model, [npy('mlp_variants', 'variant_input.npy')]))).toBe('NO_MLP');
    await model.dispose();
  });
});

describe('bad JPEGs through the native path', () => {
  it('a decompression bomb, truncated, damaged, empty or random files are DATA naming the file; good ones decode', async () => {
    const sharp = (await import('sharp')).default;
    const root = tempDir('torch-vbp-bad-jpegs-');
    fs.mkdirSync(path.join(root, 'a'));
    const pixels = crypto.randomBytes(40 * 30 * 3);
    const good = await sharp(pixels, { raw: { width: 40, height: 30, channels: 3 } })
      .jpeg()
      .toBuffer();
    // The frame header (SOF0: FF C0, length, precision, height, width) claims 60000 x 60000 pixels.
    const bomb = Buffer.from(good);
    const sof = bomb.indexOf(Buffer.from([0xff, 0xc0]));
    bomb.writeUInt16BE(60000, sof + 5);
    bomb.writeUInt16BE(60000, sof + 7);
    // An EXIF block whose IFD offset points 4 GiB away: read as no orientation, the image decodes.
    const exif = Buffer.concat([Buffer.from('Exif\0\0II*\0', 'latin1'), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1]), Buffer.from([0, exif.length + 2]), exif]);
    const files: Record<string, Buffer> = {
      '0good.jpg': good,
      '1exif.jpg': Buffer.concat([good.subarray(0, 2), app1, good.subarray(2)]),
      'bomb.jpg': bomb,
      'cut.jpg': good.subarray(0, good.length - 40),
      'empty.jpg': Buffer.alloc(0),
      'noise.jpg': Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), crypto.randomBytes(2000)]),
      'zeros.jpg': Buffer.concat([good.subarray(0, good.length >> 1), Buffer.alloc(good.length - (good.length >> 1))]),
    };
    for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(root, 'a', name), bytes);
    const data = new ImageFolderDataset(root, { crop: 16, resize: 20 });
    const item = new Float32Array(3 * 16 * 16);
    for (let i = 0; i < data.size; i++) {
      const file = data.files[i].file;
      if (['0good.jpg', '1exif.jpg'].includes(path.basename(file))) {
        await data.read(i, item);
        continue;
      }
      const error = await data.read(i, item).then(
        () => null,
        (e: { code: string; message: string }) => e,
      );
      expect({ file: path.basename(file), code: error?.code, names: error?.message.includes(file) }).toEqual({
        file: path.basename(file),
        code: 'DATA',
        names: true,
      });
    }
    await expect(data.read(Object.keys(files).indexOf('bomb.jpg'), item)).rejects.toThrow(/decompression bomb/);
  });
});
