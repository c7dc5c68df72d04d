/**
 * The README's "Using the library" example, run as a user runs it (an ES module importing 'torch-vbp',
 * in a folder where the package is installed), and the target rule the README states for plan().
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import ts from 'typescript';
import { gatherStats, loadModel, plan, type Stats } from '../lib';
import { calibrationBatches, fixture, repoRoot, tempDir } from './helpers';

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`## ${title}`);
  return readme.slice(start, readme.indexOf('\n## ', start + 5));
}

describe("the README's Using the library section", () => {
  const text = section('Using the library');
  const example = /```ts\n([\s\S]*?)```/.exec(text)![1];

  it('says the example is an ES module and shows keepLogits for fidelity()', () => {
    expect(text).toMatch(/ES module \(top-level `await`\).*\.mts/s);
    expect(example).toMatch(/keepLogits: true/);
    expect(example).toMatch(/fidelity\(/);
  });

  it('runs as written (an .mjs module importing torch-vbp) and prints what its comments say', () => {
    const dir = tempDir('torch-vbp-readme-lib-');
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(repoRoot, path.join(dir, 'node_modules', 'torch-vbp'), 'dir');
    fs.symlinkSync(path.join(repoRoot, 'models'), path.join(dir, 'models'), 'dir');
    const js = ts.transpileModule(example, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    fs.writeFileSync(path.join(dir, 'example.mjs'), js);
    const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // Every comment that shows a printed line: describeTarget's, and the accuracies and fidelity.
    const target = /console\.log\(describeTarget\(p\)\); \/\/ (.*)$/m.exec(example)![1];
    expect(r.stdout).toContain(target);
    const [, top1, top1Pruned, error, agreement] =
      /console\.log\(original\.top1.*\/\/ ([\d.]+) ([\d.]+) \{ relativeError: ([\d.]+)\.\.\., agreement: ([\d.]+) \}/.exec(
        example,
      )!;
    const printed = /^([\d.]+) ([\d.]+) \{ relativeError: ([\d.]+), agreement: ([\d.]+) \}$/m.exec(r.stdout);
    expect(printed).not.toBeNull();
    expect(printed![1]).toBe(top1);
    expect(printed![2]).toBe(top1Pruned);
    expect(printed![3].startsWith(error)).toBe(true);
    expect(printed![4]).toBe(agreement);
    expect(fs.existsSync(path.join(dir, 'deit_fmnist_vbp50.pt'))).toBe(true);
  });
});

describe('the target rule the README states', () => {
  let stats: Stats;
  beforeAll(async () => {
    const model = await loadModel(fixture('deit_scripted.pt'));
    stats = await gatherStats(model, calibrationBatches());
    await model.dispose();
  });

  it('a ratio removes floor(ratio * neurons); MAC and parameter targets are reached at least', () => {
    expect(section('Using the library')).toContain('a ratio removes `floor(ratio * neurons)` neurons');
    const neurons = stats.totalNeurons; // 576: 30 % is 172.8
    for (const ratio of [0.3, 0.5, 0.123]) {
      const p = plan(stats, { ratio });
      expect(p.totals.pruned).toBe(Math.floor(ratio * neurons));
    }
    expect(plan(stats, { ratio: 0.3 }).totals.ratio).toBeLessThan(0.3);
    const perLayer = plan(stats, { ratio: 0.3, scope: 'per-layer' });
    expect(perLayer.layers.map((l) => l.pruned.length)).toEqual(perLayer.layers.map((l) => Math.floor(0.3 * l.hidden)));
    for (const value of [0.05, 0.1, 0.123]) {
      expect(plan(stats, { macsReduction: value }).totals.macsReduction).toBeGreaterThanOrEqual(value);
      expect(plan(stats, { paramsReduction: value }).totals.paramsReduction).toBeGreaterThanOrEqual(value);
    }
    // With roundTo the kept widths are multiples and the ratio's count is still removed (or more).
    const rounded = plan(stats, { ratio: 0.3, roundTo: 16 });
    expect(rounded.totals.pruned).toBeGreaterThanOrEqual(Math.floor(0.3 * neurons));
    expect(rounded.layers.every((l) => l.keep.length % 16 === 0 || l.keep.length === l.hidden)).toBe(true);
  });
});
