/** What the linked LibTorch can run on, its thread settings and the native memory in use. */
import fs from 'node:fs';
import path from 'node:path';
import { callNativeSync } from '../errors';
import { native, nativePath, packageRoot } from './addon';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface VersionInfo {
  /** torch-vbp's version. */
  version: string;
  /** LibTorch version the addon was compiled against. */
  torch: string;
  /** Whether that LibTorch has CUDA kernels. */
  cuda: boolean;
  /** CUDA toolkit version of a CUDA build, as CMake found it ('' for CPU builds or where unknown). */
  cudaVersion: string;
  cudaDeviceCount: number;
  napiVersion: number;
  /** The addon file that was loaded. */
  addon: string;
}

export interface NativeMemory {
  /** Bytes the C allocator has handed out and not got back (glibc); -1 where unknown. */
  mallocInUse: number;
  liveModels: number;
  liveSessions: number;
  /** Fine-tuning runs in progress (each holds a copy of its student and the optimizer state). */
  liveTrainers: number;
  /** Parameters and buffers of live models, as reported to V8 with AdjustExternalMemory. */
  modelBytes: number;
}

export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

export function versionInfo(): VersionInfo {
  const info = callNativeSync(() => native().versionInfo());
  return {
    version: packageVersion(),
    torch: info.torch,
    cuda: info.cudaBuild,
    cudaVersion: info.cudaVersion ?? '',
    cudaDeviceCount: info.cudaDeviceCount,
    napiVersion: info.napiVersion,
    addon: nativePath(),
  };
}

export function cudaAvailable(): boolean {
  return callNativeSync(() => native().versionInfo().cudaAvailable);
}

export function cudaDeviceCount(): number {
  return callNativeSync(() => native().versionInfo().cudaDeviceCount);
}

/**
 * Sets LibTorch's intra-op thread count (process-wide, like torch.set_num_threads), and OpenBLAS's where
 * LibTorch uses it (Debian's does), which otherwise ignores torch's setting.
 */
export function setNumThreads(n: number): void {
  callNativeSync(() => native().setNumThreads(n));
}

export function getNumThreads(): number {
  return callNativeSync(() => native().versionInfo().numThreads);
}

/** OpenBLAS's thread count where LibTorch uses OpenBLAS (Debian's does), else -1. */
export function getBlasThreads(): number {
  return callNativeSync(() => native().versionInfo().blasThreads);
}

/**
 * Native memory in use: the C allocator's live bytes (glibc; unlike RSS it excludes freed pages kept by
 * the allocator), and the models and statistics sessions alive with their parameter bytes.
 */
export function nativeMemory(): NativeMemory {
  return callNativeSync(() => native().nativeMemory());
}

/**
 * Keeps freed blocks of up to `bytes` (default 64 MiB) in the C allocator instead of returning them to the
 * system. LibTorch allocates every activation afresh, and with glibc's defaults blocks of a few MB are
 * mapped, faulted in page by page and unmapped again on every forward: on the bundled model a batch-256
 * forward measured 120-250 ms that way and 53-57 ms with this setting. The price is resident memory up to
 * the largest working set. Process-wide (glibc's mallopt); returns false where unsupported. The `vbp`
 * command turns it on; a library leaves the choice to the application.
 */
export function keepLargeAllocations(bytes = 64 * 2 ** 20): boolean {
  return callNativeSync(() => native().keepLargeAllocations(bytes));
}
