/** `npm run prebuildify` writes the N-API prebuild that node-gyp-build loads. */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from './helpers';

describe('prebuild', () => {
  it('npm run prebuildify writes prebuilds/<platform>-<arch>/*.node and node-gyp-build resolves and loads it', () => {
    execFileSync('npm', ['run', '--silent', 'prebuildify'], { cwd: repoRoot, stdio: 'ignore' });
    const dir = path.join(repoRoot, 'prebuilds', `${process.platform}-${process.arch}`);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
    expect(files).toHaveLength(1);
    const written = path.join(dir, files[0]);

    // A fresh process that may only use prebuilds (as in an installed package without a local build).
    const script = `
      const load = require('node-gyp-build');
      const file = load.resolve(${JSON.stringify(repoRoot)});
      const addon = require(file);
      console.log(JSON.stringify({ file, torch: addon.versionInfo().torch }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { cwd: repoRoot, env: { ...process.env, PREBUILDS_ONLY: '1' }, encoding: 'utf8' }),
    ) as { file: string; torch: string };
    expect(out.file).toBe(written);
    expect(out.torch).toMatch(/^\d+\.\d+/);
    // The local build is back in place after prebuildify moved it away.
    expect(fs.existsSync(path.join(repoRoot, 'build', 'Release', 'torch_vbp.node'))).toBe(true);
  });
});
