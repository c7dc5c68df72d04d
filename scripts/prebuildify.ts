/**
 * `npm run prebuildify -- [--bundle-libtorch] [--out DIR] [--no-strip]`
 *
 * Writes DIR/prebuilds/<platform>-<arch>/ (DIR defaults to the package root), where node-gyp-build looks:
 *  - plain: prebuildify's N-API prebuild of the normal addon, which links the LibTorch it was built against
 *    where that LibTorch lives (the user installs the same LibTorch);
 *  - --bundle-libtorch: a self-contained prebuild for Electron apps and machines without LibTorch: the
 *    addon with RPATH `$ORIGIN` and the libraries it loads beside it (scripts/bundle-libtorch.ts).
 * Both write torch-vbp.build.json beside the addon: the LibTorch and CUDA versions it was built with (the
 * loader names them when the prebuild cannot load) and, for a bundle, every library with its origin.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  MANIFEST_NAME,
  BundleError,
  BundleManifest,
  addonVersions,
  bundleLibTorch,
  bundledLibraries,
  resolvedLibraries,
  versionFields,
} from './bundle-libtorch';

const root = path.resolve(__dirname, '..', '..'); // dist/scripts -> the package root
const usage = 'usage: npm run prebuildify -- [--bundle-libtorch] [--out DIR] [--no-strip]';

interface Options {
  bundle: boolean;
  out: string;
  strip: boolean;
}

function parseArguments(argv: string[]): Options {
  const options: Options = { bundle: false, out: root, strip: true };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === '--bundle-libtorch') options.bundle = true;
    else if (argument === '--no-strip') options.strip = false;
    else if (argument === '--out' || argument.startsWith('--out=')) {
      const value = argument === '--out' ? argv[++i] : argument.slice('--out='.length);
      if (!value) throw new UsageError('--out needs a folder');
      options.out = path.resolve(value);
    } else if (argument === '--help' || argument === '-h') {
      console.log(usage);
      process.exit(0);
    } else throw new UsageError(`unknown option '${argument}'`);
  }
  return options;
}

class UsageError extends Error {}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0)
    throw new BundleError(
      `${path.basename(command)} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`,
    );
}

function main(): void {
  const options = parseArguments(process.argv.slice(2));
  const platformDir = path.join(options.out, 'prebuilds', `${process.platform}-${process.arch}`);
  const packageName = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string }).name;
  const addonName = `${packageName}.node`;
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const normalAddon = path.join(root, 'build', 'Release', 'torch_vbp.node');

  if (options.bundle) {
    if (process.platform !== 'linux')
      throw new BundleError('--bundle-libtorch is implemented for Linux (ELF, $ORIGIN) only');
    run(process.execPath, [cmakeJs, 'build', '--out', 'build']);
    run(process.execPath, [cmakeJs, 'build', '--out', 'build', '-T', 'torch_vbp_bundled']);
    bundleLibTorch({
      normalAddon,
      bundledAddon: path.join(root, 'build', 'bundled', 'torch_vbp.node'),
      outDir: platformDir,
      addonName,
      strip: options.strip,
      log: (line) => console.log(`prebuildify: ${line}`),
    });
    console.log(`prebuildify: wrote ${platformDir}`);
    return;
  }

  const stale = bundledLibraries(platformDir); // a bundle's libraries must not outlive it beside a plain prebuild
  const prebuildify = require.resolve('prebuildify/bin.js', { paths: [root] });
  const flags = ['--napi', '--node-gyp', path.join(root, 'scripts', 'prebuild-node-gyp.js'), '--out', options.out];
  run(process.execPath, [prebuildify, ...flags, ...(options.strip ? ['--strip'] : [])]);
  run(process.execPath, [cmakeJs, 'build', '--out', 'build']); // prebuildify moved the local build away
  for (const file of stale) fs.rmSync(file, { force: true });
  const addon = path.join(platformDir, addonName);
  const torchLibrary = resolvedLibraries(addon).find((library) => /^libtorch_cpu\./.test(library.soname))?.file;
  const manifest: BundleManifest = {
    addon: addonName,
    bundled: false,
    platform: path.basename(platformDir),
    ...versionFields(addonVersions(addon)),
    libtorchDir: torchLibrary ? path.dirname(fs.realpathSync(torchLibrary)) : '',
    libraries: [],
    hostLibraries: [],
    bytes: fs.statSync(addon).size,
  };
  fs.writeFileSync(path.join(platformDir, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n');
  console.log(
    `prebuildify: wrote ${addon} (LibTorch ${manifest.torch}${manifest.cuda ? ` CUDA ${manifest.cuda}` : ', CPU'})`,
  );
}

try {
  main();
} catch (error) {
  console.error(`prebuildify: ${(error as Error).message}`);
  if (error instanceof UsageError) console.error(usage);
  process.exit(error instanceof UsageError ? 2 : 1);
}
