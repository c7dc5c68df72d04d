/**
 * @internal Loads the native addon and describes its raw interface. Only lib/ uses it, through the typed
 * facade (Model, Stats, ...); none of it is part of the public API.
 *
 * Order (node-gyp-build's): a local build in build/Release (a from-source build, e.g. the install
 * fallback after a prebuild failed to load, must win), then the N-API prebuild for this platform in
 * prebuilds/<platform>-<arch>/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VbpError } from '../errors';
import type { TypedArray } from '../tensor';
import { packageRoot } from '../util/package-root';
import type { MlpBlock, MlpSpec, NativeMemory } from './types';

interface NativeTensor {
  data: TypedArray;
  shape: number[];
  dtype?: string;
}

export interface NativeModel {
  forward(inputs: NativeTensor | NativeTensor[]): Promise<unknown>;
  forwardSync(inputs: NativeTensor | NativeTensor[]): unknown;
  clone(): Promise<NativeModel>;
  /** Writes the archive; `card` (JSON text) goes in as the extra file model_card.json. */
  save(path: string, card?: string): Promise<void>;
  /** The model_card.json extra file of the archive the model was loaded from, if it had one. */
  embeddedCard(): string | null;
  submodules(): Array<{ name: string; type: string }>;
  parameters(): Array<{ name: string; shape: number[]; numel: number; dtype: string }>;
  namedTensor(name: string): Promise<NativeTensor>;
  device(): string;
  dispose(): void;
  mlps(specs?: MlpSpec[]): Promise<MlpBlock[]>;
  /**
   * `optimizeGraph`: batches through the graph executor's optimised plan instead of op by op (measured slower for a
   * calibration).
   */
  createStatsSession(
    specs?: MlpSpec[],
    options?: { covariance: boolean; productType: 'float64' | 'float32'; sampling: number; optimizeGraph?: boolean },
  ): Promise<NativeStatsSession>;
  neuronNorms(specs?: MlpSpec[]): Promise<Array<{ fc1RowSq: Float64Array; fc2ColSq: Float64Array }>>;
  /** SNIP scoring on a private copy in eval mode (native/core/saliency.h). */
  createSaliencySession(specs?: MlpSpec[]): Promise<NativeSaliencySession>;
  prune(layers: NativeCut[], compensation: 'mean' | 'none' | 'lsq', ridge?: number): Promise<NativeModel>;
  /** Neurons to remove per block, greedily by the output error least squares cannot recover. */
  compensatedSelection(
    blocks: Array<{ fc2: string; covariance: Float64Array }>,
    count: number,
    ridge: number,
  ): Promise<Int32Array[]>;
  countMacs(inputs: NativeTensor | NativeTensor[]): Promise<{ total: number; byKind: Record<string, number> }>;
  /**
   * A trainer on a deep copy of this model; `resume`: with the optimizer state of the checkpoint it was loaded from.
   */
  createTrainer(options: NativeTrainerOptions, resume: boolean): Promise<NativeTrainer>;
  /** The training state (JSON) of the checkpoint this model was loaded from, if it was one. */
  checkpointState(): string | null;
}

export interface NativeTrainerOptions {
  weightDecay: number;
  temperature: number;
  alpha: number;
  clipNorm: number;
  seed: number;
  /** Parameter-name prefixes to train; undefined: all. */
  trainable?: string[];
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Run steps through the graph executor's optimised plan instead of op by op (measured slower here). */
  optimizeGraph?: boolean;
  /** Data-parallel over the process group (initDistributed): rank 0's weights, gradients averaged across ranks. */
  distributed?: boolean;
  /** Autocast of forward and loss: 'bf16', or 'fp16' on CUDA with a dynamic loss scale (default 'fp32'). */
  precision?: 'fp32' | 'bf16' | 'fp16';
}

export interface NativeStepResult {
  loss: number;
  crossEntropy: number;
  distillation: number;
  gradNorm: number;
  correct: number;
  count: number;
  /** Time spent in collectives (data-parallel only). */
  communicationMs: number;
  /** fp16: the gradients were not finite at this loss scale, so the step made no update. */
  skipped: boolean;
  lossScale: number;
}

export interface NativeTrainer {
  step(
    input: NativeTensor | NativeTensor[],
    labels: Int32Array,
    teacherLogits: NativeTensor | null,
    lr: number,
    step: number,
    /** Data-parallel: this rank was asked to stop; every rank then stops with ABORTED before the update. */
    stop?: boolean,
  ): Promise<NativeStepResult>;
  snapshot(): Promise<NativeModel>;
  /** Writes the model (eval mode) with the card, `state` and the optimizer's state inside. */
  checkpoint(path: string, card: string, state: string): Promise<void>;
  info(): { honoursTrainMode: boolean; frozenOff: string[]; trainableParameters: number; parameters: number };
  dispose(): void;
}

export interface NativeCut {
  fc1: string;
  fc2: string;
  keep: Int32Array;
  prunedMeans?: Float64Array;
  /**
   * Least squares: the means of every neuron and their covariance or any positive multiple (the co-moment), [hidden *
   * hidden].
   */
  means?: Float64Array;
  covariance?: Float64Array;
}

interface NativeLayerSnapshot {
  count: number;
  nonFinite: number;
  mean: Float64Array;
  m2: Float64Array;
  /**
   * With covariance: sum of outer products of deviations, [hidden * hidden], of comomentCount samples with mean
   * comomentMean.
   */
  comoment?: Float64Array;
  comomentCount?: number;
  comomentMean?: Float64Array;
}

export interface NativeSaliencySession {
  /** One labelled batch: forward, cross-entropy, backward, |w * dL/dw| of every fc1 row added. */
  run(inputs: NativeTensor | NativeTensor[], labels: Int32Array): Promise<void>;
  /** Per block, the scores so far, [hidden]. */
  scores(): Promise<Float64Array[]>;
  dispose(): void;
}

export interface NativeStatsSession {
  /** With `countMacs`, resolves to the multiply-accumulates of this batch's forward. */
  run(
    inputs: NativeTensor | NativeTensor[],
    countMacs?: boolean,
  ): Promise<{ total: number; byKind: Record<string, number> } | undefined>;
  snapshot(): Promise<NativeLayerSnapshot[]>;
  mlps(): MlpBlock[];
  dispose(): void;
}

interface NativeVersionInfo {
  torch: string;
  /** The version of the LibTorch the process loaded (its build settings). */
  linkedTorch: string;
  cudaBuild: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  numThreads: number;
  blasThreads: number;
  napiVersion: number;
  cudaVersion: string;
}

export interface NativeDistributedConfig {
  backend: string;
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
}

export interface NativeEvalTransform {
  resize: number;
  crop: number;
  filter: 'bicubic' | 'bilinear';
  mean: number[];
  std: number[];
}

interface NativeBinding {
  versionInfo(): NativeVersionInfo;
  /** The distributed backends compiled in ('gloo' with Gloo's headers at build time). */
  distributedBackends(): string[];
  /** Joins the process's group (one per process). */
  distributedInit(config: NativeDistributedConfig): Promise<{ rank: number; worldSize: number; backend: string }>;
  /** Leaves it; false when there was none. */
  distributedDestroy(): boolean;
  /** In place: the element-wise sum over ranks. */
  distributedAllreduce(arrays: Array<Float64Array | Float32Array>): Promise<void>;
  /** In place: rank `root`'s values. */
  distributedBroadcast(arrays: Array<Float64Array | Float32Array>, root: number): Promise<void>;
  /** Every rank's array (same length everywhere), in rank order. */
  distributedAllgather(array: Float64Array | Float32Array): Promise<Array<Float64Array | Float32Array>>;
  distributedBarrier(): Promise<void>;
  /**
   * torchvision's evaluation transform of one JPEG (a file, a part of one, or its bytes) as its PIL path computes
   * it, into `target` ([3, crop, crop]); on the libuv pool. Null when written, else why this path does not take the
   * file (not a JPEG, CMYK, an EXIF rotation, no libjpeg in the build). A damaged JPEG rejects with DATA.
   */
  evalTransformJpeg(
    input: string | { file: string; offset: number; length: number } | Uint8Array,
    options: NativeEvalTransform,
    target: Float32Array,
  ): Promise<string | null>;
  setNumThreads(n: number): void;
  manualSeed(seed: bigint): void;
  /** Reads the TF32 flags, or changes those given; returns the flags in force. */
  tf32(changes?: { matmul?: boolean; cudnn?: boolean }): { matmul: boolean; cudnn: boolean };
  loadModel(path: string, device: string): Promise<NativeModel>;
  nativeMemory(): NativeMemory;
  keepLargeAllocations(bytes: number): boolean;
  releaseCachedMemory(): void;
  /** @internal For tests: the load-time LibTorch check on a build-settings text ('' when it fits). */
  linkedTorchMismatch(config: string, compiledVersion: string, cuda: boolean): string;
  /** @internal For tests only: states of the core no public call reaches deterministically. */
  _testHooks: {
    /** The intra-op thread count a libuv pool thread runs a job with. */
    poolThreadCount(): Promise<number>;
    /** Frees, through the allocator in force, a block LibTorch's default allocator handed out. */
    freeForeignBlock(bytes?: number): void;
    /** The next `count` allocations from the system fail as if memory were exhausted. */
    injectAllocationFailures(count: number): void;
  };
}

let binding: NativeBinding | undefined;

/**
 * TORCH_VBP_ADDON: the path of an addon file to load instead of the one node-gyp-build finds (the sanitizer
 * suite's instrumented build, a build of another LibTorch).
 */
function addonOverride(): string | undefined {
  const file = process.env.TORCH_VBP_ADDON;
  return file ? path.resolve(file) : undefined;
}

export function native(): NativeBinding {
  if (binding) return binding;
  try {
    const override = addonOverride();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => NativeBinding;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = override ? (require(override) as NativeBinding) : load(packageRoot);
  } catch (error) {
    throw loadFailure(error);
  }
  return binding;
}

/**
 * The build record (scripts/prebuildify.ts) beside the addon node-gyp-build picked, when that addon is a
 * prebuild that has one (a local build in build/Release has none).
 */
function prebuildRecord():
  { torch?: string; cuda?: string | null; libtorchDir?: string; bundled?: boolean } | undefined {
  try {
    const addon = nativePath();
    if (path.basename(path.dirname(path.dirname(addon))) !== 'prebuilds') return undefined;
    return JSON.parse(fs.readFileSync(path.join(path.dirname(addon), 'torch-vbp.build.json'), 'utf8')) as ReturnType<
      typeof prebuildRecord
    >;
  } catch {
    return undefined;
  }
}

/**
 * Why the addon did not load, coded. A LibTorch library the loader cannot find, or one without the symbols
 * the addon was linked against, means the LibTorch here is not the addon's: LIBTORCH_MISMATCH, naming what
 * the prebuild was built with when it says so.
 */
function loadFailure(error: unknown): VbpError {
  if ((error as { code?: string }).code === 'LIBTORCH_MISMATCH')
    return new VbpError('LIBTORCH_MISMATCH', (error as Error).message, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  // A LibTorch library named in the message, or a missing symbol of LibTorch's namespaces (c10::, at::, torch::).
  const torchLibrary =
    /lib(torch|c10)[\w.-]*\.(so|dylib)/i.test(message) || /symbol:? _ZN(3c10|2at|5torch)/.test(message);
  if (
    torchLibrary &&
    /cannot open shared object|image not found|undefined symbol|symbol not found|version `[^']*' not found/i.test(
      message,
    )
  ) {
    const record = prebuildRecord();
    const builtWith = record?.torch
      ? ` The prebuild was built against LibTorch ${record.torch} (${record.cuda ? `CUDA ${record.cuda}` : 'CPU'})${record.libtorchDir ? ` from ${record.libtorchDir}` : ''}.`
      : '';
    return new VbpError(
      'LIBTORCH_MISMATCH',
      `torch-vbp native addon could not be loaded: ${message}\nThe LibTorch it was built against is not the one here.${builtWith} ` +
        `Install that LibTorch, use a self-contained prebuild (npm run prebuildify -- --bundle-libtorch), or build against yours: ${buildAdvice()}`,
      { cause: error },
    );
  }
  if (/No native build was found/i.test(message))
    return new VbpError('ADDON_NOT_BUILT', `torch-vbp's native addon is not built: ${buildAdvice()}`, { cause: error });
  return new VbpError('INTERNAL', `torch-vbp native addon could not be loaded: ${message}\n${buildAdvice()}`, {
    cause: error,
  });
}

/**
 * How to build the addon here: inside an installed package (node_modules) npm's install script does it,
 * when npm is allowed to run it; in a clone of the repository, npm run build:native.
 */
function buildAdvice(): string {
  if (packageRoot.split(path.sep).includes('node_modules')) {
    return (
      "npm builds it from source when it installs torch-vbp, if it may run torch-vbp's install script: " +
      '`npm install-scripts approve torch-vbp && npm rebuild torch-vbp` (npm 11; needs a C++ compiler, make, python3 and LibTorch; ' +
      'set LIBTORCH, Torch_DIR or PYTHON to choose the LibTorch). README, "Installing as a dependency".'
    );
  }
  return 'build it with `npm run build:native` (needs cmake, a C++ compiler and LibTorch; README, "Building and LibTorch").';
}

/** Path of the addon file node-gyp-build resolves (for diagnostics and the prebuild test). */
export function nativePath(): string {
  const override = addonOverride();
  if (override) return override;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = require('node-gyp-build') as { resolve(dir: string): string };
  return load.resolve(packageRoot);
}
