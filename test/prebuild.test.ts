/**
 * Prebuilds: `npm run prebuildify` writes the N-API prebuild that node-gyp-build loads, and
 * `npm run prebuildify -- --bundle-libtorch` a self-contained one (LibTorch beside the addon, `$ORIGIN`).
 * One file, so the two never build in the same build folder at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { asTensor, fixture, maxAbsDiff, npy, repoRoot, tempDir } from './helpers';
import { versionInfo } from '../lib';
import { isHostLibrary, type BundleManifest } from '../scripts/bundle-libtorch';

const platform = `${process.platform}-${process.arch}`;

function prebuildify(args: string[]): void {
  execFileSync('npm', ['run', '--silent', 'prebuildify', '--', ...args], { cwd: repoRoot, stdio: 'ignore' });
}

function manifestOf(dir: string): BundleManifest {
  return JSON.parse(fs.readFileSync(path.join(dir, 'torch-vbp.build.json'), 'utf8')) as BundleManifest;
}

/**
 * An installed copy of the package (compiled library, package.json, dependencies) with `prebuilds` in it and no build/.
 */
function installedPackage(dir: string): void {
  fs.cpSync(path.join(repoRoot, 'dist', 'lib'), path.join(dir, 'dist', 'lib'), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
}

describe('prebuild', () => {
  it('npm run prebuildify writes prebuilds/<platform>-<arch>/*.node with its build record, and node-gyp-build resolves and loads it', () => {
    prebuildify([]);
    const dir = path.join(repoRoot, 'prebuilds', platform);
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
      execFileSync(process.execPath, ['-e', script], {
        cwd: repoRoot,
        env: { ...process.env, PREBUILDS_ONLY: '1' },
        encoding: 'utf8',
      }),
    ) as { file: string; torch: string };
    expect(out.file).toBe(written);
    expect(out.torch).toMatch(/^\d+\.\d+/);
    // The prebuild records the LibTorch it was built with.
    const record = manifestOf(dir);
    expect(record).toMatchObject({
      addon: files[0],
      bundled: false,
      torch: versionInfo().torch,
      cuda: versionInfo().cuda ? expect.any(String) : null,
    });
    expect(
      fs.existsSync(
        path.join(
          record.libtorchDir,
          fs.readdirSync(record.libtorchDir).find((f) => f.startsWith('libtorch_cpu')) ?? 'none',
        ),
      ),
    ).toBe(true);
    // The local build is back in place after prebuildify moved it away.
    expect(fs.existsSync(path.join(repoRoot, 'build', 'Release', 'torch_vbp.node'))).toBe(true);
  });

  it('refuses unknown options with exit code 2', () => {
    const result = spawnSync('npm', ['run', '--silent', 'prebuildify', '--', '--bundle-libtorc'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown option '--bundle-libtorc'");
  });

  describe('--bundle-libtorch', () => {
    const work = tempDir('torch-vbp-bundle-');
    const built = path.join(work, 'built');
    let manifest: BundleManifest;

    beforeAll(() => {
      prebuildify(['--bundle-libtorch', '--out', built]);
      manifest = manifestOf(path.join(built, 'prebuilds', platform));
    }, 300_000);

    it('places the addon, every non-host library it loads and a manifest in one folder, with RPATH $ORIGIN only', () => {
      const dir = path.join(built, 'prebuilds', platform);
      expect(manifest).toMatchObject({
        addon: 'torch-vbp.node',
        bundled: true,
        torch: versionInfo().torch,
        linkedTorch: versionInfo().torch,
      });
      const names = manifest.libraries.map((library) => library.file);
      expect(names).toEqual(
        expect.arrayContaining([expect.stringMatching(/^libtorch_cpu\./), expect.stringMatching(/^libc10\./)]),
      );
      for (const library of manifest.libraries) {
        expect(fs.statSync(path.join(dir, library.file)).size).toBe(library.bytes);
        expect(isHostLibrary(library.file)).toBe(false);
      }
      expect(manifest.hostLibraries).toEqual(expect.arrayContaining(['libc.so.6', 'libstdc++.so.6']));
      expect(manifest.hostLibraries.every(isHostLibrary)).toBe(true);
      const dynamic = execFileSync('readelf', ['-d', path.join(dir, 'torch-vbp.node')], { encoding: 'utf8' });
      expect(dynamic).toMatch(/\(RPATH\)\s+Library rpath: \[\$ORIGIN\]/);
      expect(dynamic).not.toMatch(/RUNPATH/);
    });

    it('moved elsewhere inside an installed package, resolves every LibTorch library from its own folder and prunes the fixtures as the normal build does', async () => {
      const pkg = path.join(work, 'app', 'node_modules', 'torch-vbp');
      installedPackage(pkg);
      fs.renameSync(path.join(built, 'prebuilds'), path.join(pkg, 'prebuilds')); // relocatable: no absolute path inside
      const own = path.join(pkg, 'prebuilds', platform);
      const saved = path.join(work, 'pruned.pt');
      const script = `
        const fs = require('node:fs');
        const vbp = require(${JSON.stringify(path.join(pkg, 'dist', 'lib'))});
        (async () => {
          vbp.setNumThreads(1);
          const model = await vbp.loadModel(${JSON.stringify(fixture('deit_scripted.pt'))});
          const input = vbp.readNpy(${JSON.stringify(fixture('input_b4.npy'))});
          const output = await model.forward(input);
          const calib = vbp.readNpy(${JSON.stringify(fixture('calib.npy'))});
          const stats = await vbp.gatherStats(model, [calib]);
          const { model: pruned } = await vbp.prune(model, vbp.plan(stats, { ratio: 0.5 }));
          await pruned.save(${JSON.stringify(saved)});
          const prunedOutput = await pruned.forward(input);
          const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).filter((p) => p && /\\.so(\\.|$)/.test(p));
          process.stdout.write(JSON.stringify({ addon: vbp.versionInfo().addon, output: Array.from(output.data), pruned: Array.from(prunedOutput.data), maps: [...new Set(maps)] }));
        })().catch((e) => { console.error(e.code, e.message); process.exit(1); });`;
      const result = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: work, encoding: 'utf8' })) as {
        addon: string;
        output: number[];
        pruned: number[];
        maps: string[];
      };
      expect(result.addon).toBe(path.join(own, 'torch-vbp.node'));

      // Every shared library in the process comes from the bundle, except the host's own (glibc, libstdc++, GL).
      const fromElsewhere = result.maps.filter((file) => path.dirname(file) !== own && !isHostLibrary(file));
      expect(fromElsewhere).toEqual([]);
      const torchLibraries = result.maps.filter((file) => /\/lib(torch|c10)[^/]*\.so/.test(file));
      expect(torchLibraries.length).toBeGreaterThanOrEqual(3);
      expect(torchLibraries.every((file) => path.dirname(file) === own)).toBe(true);
      expect(result.maps.length).toBeGreaterThan(manifest.libraries.length); // the bundle's plus the host's

      // The same numbers as PyTorch's fixture and as the normal build.
      expect(maxAbsDiff(result.output, npy('out_deit_scripted_b4.npy').data as Float32Array)).toBeLessThanOrEqual(1e-5);
      const vbp = await import('../lib');
      const model = await vbp.loadModel(fixture('deit_scripted.pt'));
      const stats = await vbp.gatherStats(model, [npy('calib.npy')]);
      const { model: pruned } = await vbp.prune(model, vbp.plan(stats, { ratio: 0.5 }));
      const input = npy('input_b4.npy');
      expect(maxAbsDiff(result.pruned, asTensor(await pruned.forward(input)).data as Float32Array)).toBe(0);
      const reloaded = await vbp.loadModel(saved);
      expect(maxAbsDiff(asTensor(await reloaded.forward(input)).data as Float32Array, result.pruned)).toBe(0);
      for (const m of [model, pruned, reloaded]) m.dispose();

      // A prebuild whose LibTorch is not there (its libc10 asked for under another version) is a coded error naming the
      // build.
      const addon = path.join(own, 'torch-vbp.node');
      const bytes = fs.readFileSync(addon);
      const needed = /Shared library: \[(libc10[^\]]*)\]/.exec(
        execFileSync('readelf', ['-d', addon], { encoding: 'utf8' }),
      )?.[1] as string;
      const renamed = needed.replace(/\.so\.(.+)$/, (_, version: string) => `.so.${version.replace(/\d/g, '9')}`); // as if built against another version
      expect(renamed).not.toBe(needed);
      const at = bytes.indexOf(Buffer.from(`\0${needed}\0`));
      expect(at).toBeGreaterThan(0);
      Buffer.from(renamed).copy(bytes, at + 1);
      fs.writeFileSync(addon, bytes);
      const failed = spawnSync(
        process.execPath,
        [
          '-e',
          `try { require(${JSON.stringify(path.join(pkg, 'dist', 'lib'))}).versionInfo(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
        ],
        { encoding: 'utf8' },
      );
      const error = JSON.parse(failed.stdout) as { code: string; message: string };
      expect(error).toMatchObject({ code: 'LIBTORCH_MISMATCH' });
      expect(error.message).toContain(renamed);
      expect(error.message).toContain(`built against LibTorch ${manifest.torch} (CPU)`);
    }, 120_000);

    it('a plain prebuild written over a bundle removes the bundled libraries', () => {
      const out = path.join(work, 'again');
      prebuildify(['--bundle-libtorch', '--out', out]);
      const dir = path.join(out, 'prebuilds', platform);
      expect(fs.readdirSync(dir).length).toBeGreaterThan(10);
      prebuildify(['--out', out]);
      expect(fs.readdirSync(dir).sort()).toEqual(['torch-vbp.build.json', 'torch-vbp.node']);
      expect(manifestOf(dir).bundled).toBe(false);
    }, 300_000);
  });
});
