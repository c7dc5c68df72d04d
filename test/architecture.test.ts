/**
 * The structure the README's Architecture section describes, held to: one public surface without internals,
 * one place for the per-neuron arithmetic, npm scripts without surprise hooks, README sections that exist
 * wherever the code cites them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { encodeSafetensors, decodeSafetensors } from '../lib/formats/safetensors';
import { repoRoot } from './helpers';

function filesUnder(dir: string, pattern: RegExp): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => pattern.test(f)).map((f) => path.join(dir, f));
}

describe('architecture', () => {
  it('the public typings expose no internals (addon handle, queue, leases, raw addon interface)', () => {
    const dist = path.join(repoRoot, 'dist', 'lib');
    const model = fs.readFileSync(path.join(dist, 'model', 'model.d.ts'), 'utf8');
    const modelClass = model.slice(model.indexOf('export declare class Model'), model.indexOf('\n}', model.indexOf('export declare class Model')));
    for (const internal of ['handle', 'enqueue', 'lease(', 'withLease', 'outputsFor', 'signature(', 'constructor(']) {
      expect({ internal, exposed: modelClass.includes(internal) }).toEqual({ internal, exposed: false });
    }
    const index = fs.readFileSync(path.join(dist, 'index.d.ts'), 'utf8');
    expect(index).not.toMatch(/native\/addon|NativeModel|packageRoot/);
    expect(model).not.toContain('native/addon'); // the raw addon interface is not reachable from the public types
  });

  it("lib/ groups files by stage, each folder in the README's Architecture section", () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Architecture'), readme.indexOf('\n## ', readme.indexOf('## Architecture') + 5));
    const folders = fs.readdirSync(path.join(repoRoot, 'lib'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.length).toBeGreaterThanOrEqual(7);
    for (const folder of folders) expect({ folder, documented: section.includes(`${folder}/`) }).toEqual({ folder, documented: true });
    const topLevel = fs.readdirSync(path.join(repoRoot, 'lib')).filter((f) => f.endsWith('.ts'));
    expect(topLevel.sort()).toEqual(['errors.ts', 'index.ts', 'tensor.ts']);
  });

  it('the per-neuron MAC and parameter arithmetic is written once (model/accounting.ts)', () => {
    const offenders = filesUnder(path.join(repoRoot, 'lib'), /\.ts$/)
      .filter((f) => !f.endsWith(path.join('model', 'accounting.ts')))
      .filter((f) => /inFeatures \+ \w*\.?outFeatures/.test(fs.readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('npm scripts have no lifecycle hooks by accident (npm runs "preX" before "X")', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).scripts as Record<string, string>;
    const hooks = Object.keys(scripts).filter((name) => name.startsWith('pre') && scripts[name.slice(3)] !== undefined);
    expect(hooks).toEqual(['pretest']); // pretest builds what is stale before the suite, on purpose
  });

  it('every README section the code cites exists', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const headings = new Set([...readme.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1].trim()));
    const sources = [
      ...filesUnder(path.join(repoRoot, 'lib'), /\.ts$/),
      ...filesUnder(path.join(repoRoot, 'native'), /\.(cc|h)$/),
      ...filesUnder(path.join(repoRoot, 'scripts'), /\.(js|ts|sh)$/),
      path.join(repoRoot, 'CMakeLists.txt'),
    ];
    const cited: string[] = [];
    for (const file of sources) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/README,? \(?["']([^"']+)["']/g)) cited.push(m[1]);
    }
    expect(cited.length).toBeGreaterThan(2);
    for (const section of cited) expect({ section, exists: headings.has(section) }).toEqual({ section, exists: true });
  });

  it('safetensors headers are padded by their byte length, so non-ASCII names keep the data 8-byte aligned', () => {
    const bytes = encodeSafetensors({ 'blöcke.0.mlp.fc1.mean': new Float64Array([1, 2, 3]) }, { layers: 'modèle → ü' });
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect((8 + headerLength) % 8).toBe(0);
    const decoded = decodeSafetensors(bytes, 'test');
    expect(Array.from(decoded.tensors['blöcke.0.mlp.fc1.mean'].data as Float64Array)).toEqual([1, 2, 3]);
    expect(decoded.metadata.layers).toBe('modèle → ü');
  });
});
