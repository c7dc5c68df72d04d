/** The LibTorch runtime (lib/native/runtime.ts): versions and devices, the load-time LibTorch check, threads, TF32. */
import fs from 'node:fs';
import { native } from '../../lib/native/addon';
import {
  versionInfo,
  cudaAvailable,
  cudaDeviceCount,
  getNumThreads,
  getBlasThreads,
  setNumThreads,
  setAllowTF32,
  getAllowTF32,
} from '../../lib';

describe('the LibTorch runtime', () => {
  it('reports version and device facts of the linked LibTorch', () => {
    const info = versionInfo();
    expect(info.torch).toMatch(/^\d+\.\d+/);
    expect(typeof info.cuda).toBe('boolean');
    expect(cudaDeviceCount()).toBe(cudaAvailable() ? cudaDeviceCount() : 0);
    expect(getNumThreads()).toBe(1);
    expect(fs.existsSync(info.addon)).toBe(true);
  });

  it('checks at load that the LibTorch the process loaded is the one the addon was built against', () => {
    const info = versionInfo();
    // Here they agree (Debian's 1.13 both ways); the loaded one is read from its own build settings.
    expect(info.linkedTorch.split('.').slice(0, 2)).toEqual(info.torch.split('.').slice(0, 2));
    const check = (config: string, compiled: string, cuda: boolean) =>
      native().linkedTorchMismatch(config, compiled, cuda);
    expect(check('Build settings: TORCH_VERSION=1.13.1, USE_CUDA=OFF, USE_CUDNN=OFF', '1.13.0', false)).toBe('');
    expect(check('Build settings: TORCH_VERSION=2.5.1, USE_CUDA=ON', '1.13.0', false)).toMatch(
      /built against LibTorch 1\.13\.0 but the process loaded LibTorch 2\.5\.1; rebuild/,
    );
    expect(check('TORCH_VERSION=2.4.0, USE_CUDA=OFF', '2.4.0', true)).toMatch(
      /CUDA LibTorch 2\.4\.0 but the process loaded a CPU-only LibTorch 2\.4\.0/,
    );
    expect(check('no settings here', '1.13.0', false)).toBe('');
  });

  // Debian's LibTorch links OpenBLAS; the pip wheels (npm run test:compat) use MKL, which follows torch's own
  // setting, and getBlasThreads() is -1 there (no OpenBLAS in the process).
  versionInfo(); // loads the addon and its LibTorch first
  const openBlasLoaded = fs.readFileSync('/proc/self/maps', 'utf8').includes('libopenblas');

  it('getBlasThreads() is -1 exactly when no OpenBLAS is loaded', () => {
    expect(getBlasThreads() === -1).toBe(!openBlasLoaded);
  });

  (openBlasLoaded ? it : it.skip)(
    "setNumThreads() reaches OpenBLAS too (Debian's LibTorch uses it; it ignores torch's own setting)",
    () => {
      expect(getBlasThreads()).toBe(1);
      try {
        setNumThreads(2);
        expect(getBlasThreads()).toBe(2);
        setNumThreads(1);
        expect(getBlasThreads()).toBe(1);
      } finally {
        setNumThreads(1);
      }
    },
  );

  it("setAllowTF32() sets LibTorch's TF32 flags (defaults: matmul off, cuDNN on, as in PyTorch), only those given", () => {
    expect(getAllowTF32()).toEqual({ matmul: false, cudnn: true });
    try {
      expect(setAllowTF32({ cudnn: false })).toEqual({ matmul: false, cudnn: false });
      expect(setAllowTF32({ matmul: true })).toEqual({ matmul: true, cudnn: false });
      expect(getAllowTF32()).toEqual({ matmul: true, cudnn: false });
    } finally {
      setAllowTF32({ matmul: false, cudnn: true });
    }
    expect(getAllowTF32()).toEqual({ matmul: false, cudnn: true });
    expect(() => setAllowTF32({ cuBLAS: false } as never)).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining("unknown option 'cuBLAS'"),
      }),
    );
    expect(() => setAllowTF32({ matmul: 'no' } as never)).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('matmul must be true or false'),
      }),
    );
  });
});
