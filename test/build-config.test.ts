/**
 * How the build finds LibTorch (README, "Building and LibTorch"): the same order in CMakeLists.txt (cmake-js)
 * and scripts/libtorch-config.js (binding.gyp, the install fallback). An unpacked LibTorch and a Python
 * torch are staged from this machine's LibTorch (symlinks in the layout each one has); CMake is only
 * configured, which is where the lookup happens. The staging needs Debian's libtorch-dev (installed by
 * scripts/bootstrap.sh before the suite).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, tempDir } from './helpers';

const work = tempDir('torch-vbp-build-config-');
const systemLibDir = '/usr/lib/x86_64-linux-gnu';
const systemConfig = path.join(systemLibDir, 'cmake');

/**
 * An unpacked LibTorch: include/, lib/ with the libraries, and the CMake config under lib/<arch>/cmake (Debian's
 * depth).
 */
function unpackedLibTorch(): string {
  const prefix = path.join(work, 'libtorch');
  fs.mkdirSync(path.join(prefix, 'lib', 'x86_64-linux-gnu', 'cmake'), { recursive: true });
  fs.symlinkSync('/usr/include', path.join(prefix, 'include'));
  for (const name of ['Torch', 'Caffe2'])
    fs.symlinkSync(path.join(systemConfig, name), path.join(prefix, 'lib', 'x86_64-linux-gnu', 'cmake', name));
  for (const name of ['libtorch.so', 'libtorch_cpu.so', 'libc10.so'])
    fs.symlinkSync(path.join(systemLibDir, name), path.join(prefix, 'lib', name));
  // The CMake targets name the versioned files beside their config's lib/<arch>.
  for (const name of fs.readdirSync(systemLibDir).filter((f) => /^lib(torch|c10|caffe2|shm)/.test(f))) {
    fs.symlinkSync(path.join(systemLibDir, name), path.join(prefix, 'lib', 'x86_64-linux-gnu', name));
  }
  return prefix;
}

/** A `python` that answers the two questions the build asks a torch install (its CMake prefix, its package folder). */
function fakePython(prefix: string): string {
  const file = path.join(work, 'python-with-torch');
  fs.writeFileSync(
    file,
    `#!/bin/sh\ncase "$*" in *__file__*) echo ${prefix} ;; esac\ncase "$*" in *cmake_prefix_path*) echo ${path.join(prefix, 'lib', 'x86_64-linux-gnu', 'cmake')} ;; esac\n`,
    { mode: 0o755 },
  );
  return file;
}

let configureCount = 0;

/** Configures CMakeLists.txt in a fresh build folder with only `env` set for the lookup. */
function configure(env: Record<string, string>): { status: number | null; output: string } {
  const build = path.join(work, `build-${configureCount++}`);
  const clean: NodeJS.ProcessEnv = { ...process.env, PYTHON: '/nonexistent-python' };
  delete clean.LIBTORCH;
  delete clean.Torch_DIR;
  const result = spawnSync('cmake', ['-S', repoRoot, '-B', build], { env: { ...clean, ...env }, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.replace(/\s+/g, ' ') }; // CMake wraps long messages
}

function gypConfig(env: Record<string, string>): {
  status: number | null;
  found?: { prefix: string; libdir: string; how: string };
  stderr: string;
} {
  const clean: NodeJS.ProcessEnv = { ...process.env, PYTHON: '/nonexistent-python' };
  delete clean.LIBTORCH;
  delete clean.Torch_DIR;
  const result = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'libtorch-config.js'), 'describe'], {
    env: { ...clean, ...env },
    encoding: 'utf8',
  });
  return {
    status: result.status,
    found: result.status === 0 ? JSON.parse(result.stdout) : undefined,
    stderr: result.stderr,
  };
}

describe('finding LibTorch', () => {
  const prefix = unpackedLibTorch();
  const python = fakePython(prefix);

  it('LIBTORCH=an unpacked LibTorch: found there', () => {
    const { status, output } = configure({ LIBTORCH: prefix });
    expect(status).toBe(0);
    expect(output).toContain(`torch-vbp: LibTorch 1.13`);
    expect(output).toContain(`from LIBTORCH=${prefix} (${prefix})`);
    expect(gypConfig({ LIBTORCH: prefix }).found).toMatchObject({
      prefix,
      libdir: path.join(prefix, 'lib'),
      how: `LIBTORCH=${prefix}`,
    });
  });

  it('Torch_DIR=the folder holding TorchConfig.cmake', () => {
    const torchDir = path.join(prefix, 'lib', 'x86_64-linux-gnu', 'cmake', 'Torch');
    const { status, output } = configure({ Torch_DIR: torchDir });
    expect(status).toBe(0);
    expect(output).toContain(`from Torch_DIR=${torchDir} (${prefix})`);
    expect(gypConfig({ Torch_DIR: torchDir }).found).toMatchObject({ prefix, how: `Torch_DIR=${torchDir}` });
  });

  it("PYTHON=a Python whose torch holds LibTorch (a pip CUDA torch's route)", () => {
    const { status, output } = configure({ PYTHON: python });
    expect(status).toBe(0);
    expect(output).toContain(
      `from Python torch (${python}): ${path.join(prefix, 'lib', 'x86_64-linux-gnu', 'cmake')} (${prefix})`,
    );
    expect(gypConfig({ PYTHON: python }).found).toMatchObject({ prefix, how: `Python torch (${python})` });
  });

  it('a LIBTORCH that does not exist, or holds no LibTorch, stops the build with the ways to provide one', () => {
    const missing = configure({ LIBTORCH: path.join(work, 'nowhere') });
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain(`torch-vbp: LIBTORCH=${path.join(work, 'nowhere')} does not exist.`);

    const empty = path.join(work, 'empty');
    fs.mkdirSync(empty);
    const notFound = configure({ LIBTORCH: empty });
    expect(notFound.status).not.toBe(0);
    expect(notFound.output).toContain(`torch-vbp: LibTorch not found (searched: LIBTORCH=${empty})`);
    expect(notFound.output).toContain('export PYTHON=/path/to/python');
    const gyp = gypConfig({ LIBTORCH: empty });
    expect(gyp.status).toBe(1);
    expect(gyp.stderr).toContain('torch-vbp: LibTorch not found');

    const noConfig = configure({ Torch_DIR: empty });
    expect(noConfig.status).not.toBe(0);
    expect(noConfig.output).toContain(`Torch_DIR=${empty} holds no TorchConfig.cmake`);
  });

  it('with nothing set, the system LibTorch', () => {
    const { status, output } = configure({});
    expect(status).toBe(0);
    expect(output).toContain('from system paths (/usr)');
    expect(gypConfig({}).found).toMatchObject({ prefix: '/usr', libdir: systemLibDir, how: 'system paths' });
  });
});
