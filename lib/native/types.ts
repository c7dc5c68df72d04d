/**
 * The values the native core returns as they are, which the public API shows unchanged: the MLP blocks its
 * structure search finds, and its memory counters. Here so that the raw interface (addon.ts) and the typed
 * facade (runtime.ts, model/) share one definition without importing each other.
 */

export interface MlpBlock {
  /** Module whose forward calls both layers ('' for the root). */
  owner: string;
  /** Dotted submodule paths. */
  fc1: string;
  fc2: string;
  inFeatures: number;
  /** fc1's outputs = fc2's inputs: the neurons VBP ranks and prunes. */
  hidden: number;
  outFeatures: number;
  /** gelu, gelu_tanh, relu, silu, ...; 'identity' when none; 'elementwise' for a hand-written one;
   *  'unverified' for a pair given explicitly that the structure search did not confirm. */
  activation: string;
}

/** An explicit choice of blocks, e.g. [{ fc1: 'blocks.0.mlp.fc1', fc2: 'blocks.0.mlp.fc2' }]. */
export interface MlpSpec {
  fc1: string;
  fc2: string;
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
  /**
   * torch-vbp's caching CPU allocator for LibTorch's tensors (blocks of 64 KiB and more): bytes kept for
   * reuse, bytes in use, the largest in use since the cache was last emptied, and allocations served from
   * the cache or not. In use plus cached stays within twice the largest in use plus `slackBytes` (16 MiB,
   * or VBP_CPU_CACHE_SLACK_MB). `installed` is false with VBP_CPU_ALLOCATOR=default.
   */
  cpuCache: CpuCacheInfo;
}

export interface CpuCacheInfo {
  installed: boolean;
  cachedBytes: number;
  liveBytes: number;
  peakLiveBytes: number;
  hits: number;
  misses: number;
  slackBytes: number;
}
