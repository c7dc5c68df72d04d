/** What the linked LibTorch can run on, its thread settings and the native memory in use. */
import fs from 'node:fs';
import path from 'node:path';
import { callNativeSync, VbpError } from '../errors';
import { checkOptionKeys } from '../util/options';
import { packageRoot } from '../util/package-root';
import { native, nativePath } from './addon';
import type { NativeMemory } from './types';

export type { CpuCacheInfo, NativeMemory } from './types';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface VersionInfo {
  /** torch-vbp's version. */
  version: string;
  /** LibTorch version the addon was compiled against. */
  torch: string;
  /** LibTorch version the process loaded (checked at load: same major.minor, or LIBTORCH_MISMATCH). */
  linkedTorch: string;
  /** Whether the addon and its LibTorch have CUDA kernels (what was compiled; true without a GPU too). */
  cuda: boolean;
  /** CUDA toolkit version of a CUDA build, as CMake found it ('' for CPU builds or where unknown). */
  cudaVersion: string;
  /** CUDA GPUs this process sees (what is present: 0 without a GPU or a driver, and for CPU builds). */
  cudaDeviceCount: number;
  napiVersion: number;
  /** The addon file that was loaded. */
  addon: string;
}

export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

export function versionInfo(): VersionInfo {
  const info = callNativeSync(() => native().versionInfo());
  return {
    version: packageVersion(),
    torch: info.torch,
    linkedTorch: info.linkedTorch,
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

/**
 * Seeds LibTorch's default random generators (CPU and every GPU), as torch.manual_seed does: random ops in
 * a model's own code (torch.rand, dropout in train mode) then repeat. Fine-tuning does not need it: its
 * steps are seeded from their `seed` option and leave these generators as they found them.
 */
export function manualSeed(seed: number | bigint): void {
  const value = typeof seed === 'bigint' ? seed : Number.isSafeInteger(seed) && seed >= 0 ? BigInt(seed) : -1n;
  if (value < 0n || value >= 2n ** 64n)
    throw new VbpError(
      'INVALID_ARGUMENT',
      `manualSeed(seed): seed must be an integer in [0, 2^64), got ${String(seed)}`,
    );
  callNativeSync(() => native().manualSeed(value));
}

/** Whether float32 matmuls (cuBLAS) and convolutions (cuDNN) may use TF32 on NVIDIA GPUs. */
export interface TF32Settings {
  matmul: boolean;
  cudnn: boolean;
}

/**
 * Lets float32 matmuls and convolutions on NVIDIA GPUs (Ampere and later) round their inputs to TF32, or
 * forbids it: process-wide, the same LibTorch flags as `torch.backends.cuda.matmul.allow_tf32` and
 * `torch.backends.cudnn.allow_tf32` (LibTorch's defaults: matmul false, cuDNN true). Only the flags given
 * change; returns the flags now in force. Turn both off to compare outputs with a float32 reference.
 */
export function setAllowTF32(settings: Partial<TF32Settings>): TF32Settings {
  checkOptionKeys(settings, ['matmul', 'cudnn'], 'setAllowTF32()');
  for (const [key, value] of Object.entries(settings ?? {})) {
    if (typeof value !== 'boolean')
      throw new VbpError('INVALID_ARGUMENT', `setAllowTF32(): ${key} must be true or false, got ${String(value)}`);
  }
  return callNativeSync(() => native().tf32(settings));
}

/** The TF32 flags in force (setAllowTF32). */
export function getAllowTF32(): TF32Settings {
  return callNativeSync(() => native().tf32());
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
 * Gives the blocks torch-vbp's CPU allocator keeps for reuse back to the system now (it also does when the
 * last model is disposed). Tensors in use are not affected; the next forwards allocate afresh.
 */
export function releaseCachedMemory(): void {
  callNativeSync(() => native().releaseCachedMemory());
}

/**
 * Optional, and not needed for speed since torch-vbp caches LibTorch's tensor blocks itself (see
 * nativeMemory().cpuCache): keeps freed blocks of up to `bytes` (default 64 MiB) in glibc's allocator for
 * every allocation of the process (M_MMAP_THRESHOLD / M_TRIM_THRESHOLD), for applications whose own native
 * code suffers from the same page faults. Process-wide; returns false where unsupported (non-glibc).
 */
export function keepLargeAllocations(bytes = 64 * 2 ** 20): boolean {
  return callNativeSync(() => native().keepLargeAllocations(bytes));
}
