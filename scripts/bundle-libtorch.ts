/**
 * A self-contained prebuild: the addon linked with RPATH `$ORIGIN` only (CMake target torch_vbp_bundled),
 * with every shared library it loads copied beside it, except those that must come from the host (glibc,
 * the C++ runtime that Node.js itself loads, GPU driver libraries, which must match the installed driver).
 *
 * The library set is what the dynamic loader resolves for the normal build (`ldd`), so it is exactly what
 * runs here, whichever LibTorch the build found (Debian's, an unpacked download, a pip torch). The result
 * is checked with `ldd` again (every non-host library from the bundle's own folder) and by loading it in a
 * fresh Node.js process, which also gives the LibTorch and CUDA versions recorded in the manifest.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

/** Libraries left to the host, by soname. Bundling these breaks rather than helps (driver/ABI mismatch). */
const HOST_LIBRARIES: RegExp[] = [
  /^linux-vdso\.so/,
  /^ld-linux/,
  /^lib(c|m|dl|rt|pthread|util|resolv|anl|nsl|mvec|BrokenLocale)\.so/, // glibc
  /^libstdc\+\+\.so/, // the C++ runtime: Node.js (and Electron's Node) already has one loaded
  /^libgcc_s\.so/,
  /^libcuda\.so/, // the CUDA driver and GPU/graphics driver libraries must be the host's own
  /^libnvidia-/,
  /^libGL(X|dispatch|ESv2)?\.so/,
  /^libEGL\.so/,
  /^libOpenGL\.so/,
  /^libdrm\.so/,
  /^libgbm\.so/,
];

export function isHostLibrary(soname: string): boolean {
  return HOST_LIBRARIES.some((pattern) => pattern.test(path.basename(soname)));
}

export interface ResolvedLibrary {
  /** The name the loader looks for (DT_NEEDED). */
  soname: string;
  /** Where it resolved; undefined when `ldd` says "not found". */
  file?: string;
}

/** The loader's resolution of every library `file` needs, directly or not (`ldd`). */
export function resolvedLibraries(file: string): ResolvedLibrary[] {
  const text = execFileSync('ldd', [file], { encoding: 'utf8' });
  const libraries: ResolvedLibrary[] = [];
  for (const line of text.split('\n')) {
    const arrow = /^\s*(\S+) => (?:(\S+) \(0x[0-9a-f]+\)|not found)/.exec(line);
    if (arrow) libraries.push({ soname: arrow[1], file: arrow[2] });
    else {
      const direct = /^\s*(\S+) \(0x[0-9a-f]+\)/.exec(line); // the vdso and the loader itself
      if (direct) libraries.push({ soname: path.basename(direct[1]), file: direct[1] });
    }
  }
  return libraries;
}

/** RPATH and RUNPATH entries of an ELF file (`readelf -d`). */
export function searchPaths(file: string): { rpath: string[]; runpath: string[] } {
  const text = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  const entries = (tag: string): string[] => {
    const match = new RegExp(`\\(${tag}\\)\\s+Library ${tag.toLowerCase()}: \\[([^\\]]*)\\]`).exec(text);
    return match ? match[1].split(':').filter(Boolean) : [];
  };
  return { rpath: entries('RPATH'), runpath: entries('RUNPATH') };
}

export interface BundleManifest {
  addon: string;
  bundled: boolean;
  platform: string;
  /** LibTorch the addon was compiled against, and the one that loaded when the prebuild was checked. */
  torch: string;
  linkedTorch: string;
  /** CUDA version of a CUDA build, null for a CPU-only one. */
  cuda: string | null;
  /** The folder of the LibTorch libraries the build linked. */
  libtorchDir: string;
  /** Bundled libraries: file name in the bundle, where it was copied from, size. */
  libraries: Array<{ file: string; from: string; bytes: number }>;
  /** Libraries the bundle expects the host to provide. */
  hostLibraries: string[];
  bytes: number;
}

export const MANIFEST_NAME = 'torch-vbp.build.json';

/** The record's version fields, from what the addon itself reports. */
export function versionFields(
  versions: ReturnType<typeof addonVersions>,
): Pick<BundleManifest, 'torch' | 'linkedTorch' | 'cuda'> {
  return {
    torch: versions.torch,
    linkedTorch: versions.linkedTorch,
    cuda: versions.cudaBuild ? versions.cudaVersion || 'unknown' : null,
  };
}

export class BundleError extends Error {}

/** What a built addon reports about its LibTorch, from a fresh process (it must load to be a usable prebuild). */
export function addonVersions(addon: string): {
  torch: string;
  linkedTorch: string;
  cudaBuild: boolean;
  cudaVersion: string;
} {
  const script = `const a = require(${JSON.stringify(addon)}).versionInfo();
    process.stdout.write(JSON.stringify({ torch: a.torch, linkedTorch: a.linkedTorch, cudaBuild: a.cudaBuild, cudaVersion: a.cudaVersion }));`;
  try {
    return JSON.parse(
      execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    ) as ReturnType<typeof addonVersions>;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? error)
      .trim()
      .split('\n')
      .slice(0, 6)
      .join('\n');
    throw new BundleError(`the addon ${addon} does not load in a fresh Node.js process:\n${stderr}`);
  }
}

/** The libraries an earlier bundle in `dir` placed beside its addon (its manifest's list; none for a plain
 * prebuild). */
export function bundledLibraries(dir: string): string[] {
  const manifestFile = path.join(dir, MANIFEST_NAME);
  if (!fs.existsSync(manifestFile)) return [];
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as BundleManifest;
  return (manifest.libraries ?? []).map((library) => path.join(dir, path.basename(library.file)));
}

export interface BundleOptions {
  /** The addon of the normal build (its RPATH finds the LibTorch the build found): defines the library set. */
  normalAddon: string;
  /** The same addon linked with RPATH `$ORIGIN` only. */
  bundledAddon: string;
  /** prebuilds/<platform>-<arch> to write. */
  outDir: string;
  /** File name of the addon in outDir (node-gyp-build's naming: <package name>.node). */
  addonName: string;
  strip: boolean;
  log?: (line: string) => void;
}

/**
 * Writes the bundle into `outDir`: built in a temporary sibling folder, checked, then swapped in, so an
 * interrupted or failed run leaves the previous prebuild as it was.
 */
export function bundleLibTorch(options: BundleOptions): BundleManifest {
  const log = options.log ?? (() => {});
  const resolved = resolvedLibraries(options.normalAddon);
  const missing = resolved.filter((library) => !library.file);
  if (missing.length > 0)
    throw new BundleError(
      `the build's own addon cannot find ${missing.map((l) => l.soname).join(', ')} (ldd ${options.normalAddon})`,
    );
  const torchLibrary = resolved.find((library) => /^libtorch_cpu\.(so|dylib)/.test(library.soname));
  if (!torchLibrary?.file)
    throw new BundleError(`${options.normalAddon} does not link libtorch_cpu: not a LibTorch addon?`);

  const parent = path.dirname(options.outDir);
  fs.mkdirSync(parent, { recursive: true });
  const staging = fs.mkdtempSync(path.join(parent, `.${path.basename(options.outDir)}.bundle-`));
  try {
    const libraries: BundleManifest['libraries'] = [];
    const hostLibraries: string[] = [];
    for (const library of resolved) {
      if (isHostLibrary(library.soname)) {
        hostLibraries.push(library.soname);
        continue;
      }
      const target = path.join(staging, library.soname);
      fs.copyFileSync(library.file as string, target); // the file itself, under the name the loader asks for
      fs.chmodSync(target, 0o755);
      // A RUNPATH hides the addon's RPATH from this library's own dependencies; it must then name $ORIGIN.
      const { runpath } = searchPaths(target);
      if (
        runpath.length > 0 &&
        !runpath.some((entry) => entry.startsWith('$ORIGIN') || entry.startsWith('${ORIGIN}'))
      ) {
        throw new BundleError(
          `${library.file} has RUNPATH ${runpath.join(':')} without $ORIGIN, so its dependencies would not be looked up in the bundle; set it with \`patchelf --set-rpath '$ORIGIN'\` on a copy of that LibTorch and build against the copy`,
        );
      }
      libraries.push({
        file: library.soname,
        from: fs.realpathSync(library.file as string),
        bytes: fs.statSync(target).size,
      });
    }
    const addon = path.join(staging, options.addonName);
    fs.copyFileSync(options.bundledAddon, addon);
    if (options.strip) execFileSync('strip', ['--strip-unneeded', addon]);

    // Every library the bundled addon loads, except the host's, must now come from the bundle itself.
    const strays = resolvedLibraries(addon).filter(
      (library) => !isHostLibrary(library.soname) && (!library.file || path.dirname(library.file) !== staging),
    );
    if (strays.length > 0) {
      throw new BundleError(
        `the bundled addon still resolves outside its folder: ${strays.map((l) => `${l.soname} => ${l.file ?? 'not found'}`).join(', ')}`,
      );
    }
    const versions = addonVersions(addon);
    const manifest: BundleManifest = {
      addon: options.addonName,
      bundled: true,
      platform: path.basename(options.outDir),
      ...versionFields(versions),
      libtorchDir: path.dirname(fs.realpathSync(torchLibrary.file)),
      libraries,
      hostLibraries,
      bytes: libraries.reduce((sum, library) => sum + library.bytes, 0) + fs.statSync(addon).size,
    };
    fs.writeFileSync(path.join(staging, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n');
    log(
      `bundled ${libraries.length} libraries (${(manifest.bytes / 2 ** 20).toFixed(0)} MiB) from LibTorch ${manifest.torch}${manifest.cuda ? ` CUDA ${manifest.cuda}` : ' (CPU)'}; left to the host: ${hostLibraries.join(', ')}`,
    );

    // Swap in: the old folder (plain or bundled) moves aside and goes only once the new one is in place.
    const old = fs.existsSync(options.outDir) ? `${staging}.old` : undefined;
    if (old) fs.renameSync(options.outDir, old);
    fs.renameSync(staging, options.outDir);
    if (old) fs.rmSync(old, { recursive: true, force: true });
    return manifest;
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}
