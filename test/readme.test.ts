/**
 * The README's "Testing against PyTorch" examples, run as a user would: the jest test file with jest (in a
 * folder where `torch-vbp` is installed, next to model.pt, inputs.pt and outputs.pt made by PyTorch), and the
 * node:test file with `node --test`. An example that stops working fails here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, runPython, tempDir } from './helpers';

function codeBlocks(language: string): string[] {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('## Testing against PyTorch');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
  return [...section.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

/** A project folder with torch-vbp installed (a link to this checkout, as `npm link` makes). */
function project(): string {
  const dir = tempDir('torch-vbp-readme-');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(repoRoot, path.join(dir, 'node_modules', 'torch-vbp'), 'dir');
  return dir;
}

describe("the README's Testing against PyTorch section", () => {
  it('has a Python side, a jest test file, a node:test file and the CLI', () => {
    expect(codeBlocks('python')[0]).toContain('torch.save(');
    expect(codeBlocks('js').map((b) => b.split('\n')[0])).toEqual([
      expect.stringContaining('model.test.js'),
      expect.stringContaining('close.test.js'),
    ]);
  });

  it('its jest test file passes under jest against files made by PyTorch', () => {
    const dir = project();
    runPython('testing_corpus.py', ['model', dir]);
    fs.writeFileSync(path.join(dir, 'model.test.js'), codeBlocks('js')[0]);
    const config = JSON.stringify({
      rootDir: dir,
      testEnvironment: 'node',
      transform: {},
      testMatch: ['**/model.test.js'],
    });
    const r = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules', 'jest', 'bin', 'jest.js'), '--config', config, '--ci', '--no-cache'],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(r.stderr).toMatch(/Tests:\s+2 passed, 2 total/);
    expect(r.status).toBe(0);
  });

  it('its node:test file passes under node --test', () => {
    const dir = project();
    fs.writeFileSync(path.join(dir, 'close.test.js'), codeBlocks('js')[1]);
    const r = spawnSync(process.execPath, ['--test', path.join(dir, 'close.test.js')], { cwd: dir, encoding: 'utf8' });
    expect(r.stdout).toMatch(/# pass 1/);
    expect(r.status).toBe(0);
  });

  it('the package exports its root and ./jest, with typings', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
    };
    for (const entry of ['.', './jest']) {
      for (const file of [pkg.exports[entry].types, pkg.exports[entry].default])
        expect(fs.existsSync(path.join(repoRoot, file))).toBe(true);
    }
    expect(fs.readFileSync(path.join(repoRoot, pkg.exports['./jest'].types), 'utf8')).toContain('toBeCloseToTensor');
  });
});
