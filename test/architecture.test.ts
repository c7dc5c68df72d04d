/**
 * The structure the README's Architecture section describes, held to: one public surface without internals,
 * one folder per stage in the order the README states, no import cycle and no import from a later stage into
 * an earlier one, tests that mirror the stages, one place for the per-neuron arithmetic, npm scripts without
 * surprise hooks, README sections that exist wherever the code cites them.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { repoRoot } from './helpers';

function filesUnder(dir: string, pattern: RegExp): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => pattern.test(f))
    .map((f) => path.join(dir, f));
}

function architectureSection(): string {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  return readme.slice(
    readme.indexOf('## Architecture'),
    readme.indexOf('\n## ', readme.indexOf('## Architecture') + 5),
  );
}

const lib = path.join(repoRoot, 'lib');

/**
 * Every file under lib/ (relative to lib/, e.g. 'pruning/plan.ts') with the lib/ files it imports, type-only imports
 * included.
 */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of filesUnder(lib, /\.ts$/)) {
    const imported = ts
      .preProcessFile(fs.readFileSync(file, 'utf8'), true, true)
      .importedFiles.map((r) => r.fileName)
      .filter((name) => name.startsWith('.'));
    graph.set(
      path.relative(lib, file),
      imported.map((specifier) => {
        const base = path.resolve(path.dirname(file), specifier);
        const target = [`${base}.ts`, path.join(base, 'index.ts')].find((candidate) => fs.existsSync(candidate));
        if (!target) throw new Error(`${path.relative(lib, file)} imports '${specifier}', which is no file under lib/`);
        return path.relative(lib, target);
      }),
    );
  }
  return graph;
}

/**
 * The import cycles of a graph: its strongly connected components of more than one file, or a file importing itself.
 */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(file, Math.min(low.get(file)!, index.get(next)!));
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || graph.get(file)!.includes(file)) found.push(component.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

/**
 * The stage order the README's Architecture section states: `errors.ts` -> `tensor.ts` -> `util/` -> ... -> `index.ts`.
 */
function stageOrder(): string[] {
  const section = architectureSection();
  const paragraph = section.slice(
    section.indexOf('**Stage order.**'),
    section.indexOf('\n\n', section.indexOf('**Stage order.**')),
  );
  return [...paragraph.matchAll(/`([\w-]+(?:\/|\.ts))`(?=\s*(?:->|\.\s*$|$))/g)].map((m) => m[1]);
}

/** A lib/ file's stage: its folder ('pruning/') or, for the files at the top, itself ('errors.ts'). */
function stageOf(file: string): string {
  return file.includes(path.sep) ? `${file.split(path.sep)[0]}/` : file;
}

describe('architecture', () => {
  it('the public typings expose no internals (addon handle, queue, leases, raw addon interface)', () => {
    const dist = path.join(repoRoot, 'dist', 'lib');
    const model = fs.readFileSync(path.join(dist, 'model', 'model.d.ts'), 'utf8');
    const modelClass = model.slice(
      model.indexOf('export declare class Model'),
      model.indexOf('\n}', model.indexOf('export declare class Model')),
    );
    for (const internal of ['handle', 'enqueue', 'lease(', 'withLease', 'outputsFor', 'signature(', 'constructor(']) {
      expect({ internal, exposed: modelClass.includes(internal) }).toEqual({ internal, exposed: false });
    }
    const index = fs.readFileSync(path.join(dist, 'index.d.ts'), 'utf8');
    expect(index).not.toMatch(/native\/addon|NativeModel|packageRoot/);
    expect(model).not.toContain('native/addon'); // the raw addon interface is not reachable from the public types
  });

  it("lib/ groups files by stage, each folder in the README's Architecture section", () => {
    const section = architectureSection();
    const folders = fs
      .readdirSync(path.join(repoRoot, 'lib'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.length).toBeGreaterThanOrEqual(7);
    for (const folder of folders)
      expect({ folder, documented: section.includes(`${folder}/`) }).toEqual({ folder, documented: true });
    const topLevel = fs.readdirSync(path.join(repoRoot, 'lib')).filter((f) => f.endsWith('.ts'));
    expect(topLevel.sort()).toEqual(['errors.ts', 'index.ts', 'tensor.ts']);
  });

  it('lib/ has no import cycle (type-only imports included)', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph)).toEqual([]);
    // The check itself finds a cycle, a self-import and one through three files.
    expect(
      cycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', ['a.ts']],
          ['c.ts', ['c.ts']],
          ['d.ts', ['e.ts']],
          ['e.ts', ['f.ts']],
          ['f.ts', ['d.ts']],
        ]),
      ),
    ).toEqual([['a.ts', 'b.ts'], ['c.ts'], ['d.ts', 'e.ts', 'f.ts']]);
  });

  it("no lib/ file imports from a later stage than its own, in the order the README's Architecture section states", () => {
    const order = stageOrder();
    const stages = new Set([...importGraph().keys()].map(stageOf));
    expect([...stages].filter((stage) => !order.includes(stage))).toEqual([]);
    expect(order.filter((stage) => !stages.has(stage))).toEqual([]);
    expect(order.slice(0, 3)).toEqual(['errors.ts', 'tensor.ts', 'util/']);
    expect(order.at(-1)).toBe('index.ts');
    const backwards: string[] = [];
    for (const [file, imports] of importGraph()) {
      for (const target of imports) {
        if (order.indexOf(stageOf(target)) > order.indexOf(stageOf(file))) backwards.push(`${file} -> ${target}`);
      }
    }
    expect(backwards).toEqual([]);
  });

  it('test/ mirrors lib/: each folder of tests is a stage of lib/, and test/README.md lists them', () => {
    const stages = fs
      .readdirSync(lib, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    const support = ['fixtures', 'python', 'support', 'compat'];
    const folders = fs
      .readdirSync(path.join(repoRoot, 'test'), { withFileTypes: true })
      .filter((e) => e.isDirectory() && !support.includes(e.name))
      .map((e) => e.name);
    expect(folders.filter((folder) => !stages.includes(folder))).toEqual([]);
    for (const stage of ['model', 'statistics', 'pruning', 'recovery', 'cli']) expect(folders).toContain(stage);
    const guide = fs.readFileSync(path.join(repoRoot, 'test', 'README.md'), 'utf8');
    for (const folder of folders)
      expect({ folder, listed: guide.includes(`${folder}/`) }).toEqual({ folder, listed: true });
  });

  it('the per-neuron MAC and parameter arithmetic is written once (model/accounting.ts)', () => {
    const offenders = filesUnder(path.join(repoRoot, 'lib'), /\.ts$/)
      .filter((f) => !f.endsWith(path.join('model', 'accounting.ts')))
      .filter((f) => /inFeatures \+ \w*\.?outFeatures/.test(fs.readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('npm scripts have no lifecycle hooks by accident (npm runs "preX" before "X")', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).scripts as Record<
      string,
      string
    >;
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
});
