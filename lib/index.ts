/**
 * torch-vbp: Variance-Based Pruning of TorchScript vision transformers, on a native LibTorch core.
 * This file is the package's one public surface; everything else under lib/ is internal.
 */
export { VbpError, isVbpError, ERROR_CODES, type ErrorCode } from './errors';
export { tensor, isTensor, expectTensor, numel, type Tensor, type TypedArray, type Value, type DType } from './tensor';

// The LibTorch runtime
export {
  versionInfo,
  cudaAvailable,
  cudaDeviceCount,
  setNumThreads,
  getNumThreads,
  manualSeed,
  setAllowTF32,
  getAllowTF32,
  type TF32Settings,
  getBlasThreads,
  nativeMemory,
  releaseCachedMemory,
  keepLargeAllocations,
  type Device,
  type VersionInfo,
  type NativeMemory,
  type CpuCacheInfo,
} from './native/runtime';

// The pipeline: model -> statistics -> plan -> pruned model
export {
  loadModel,
  Model,
  probeInput,
  type LoadOptions,
  type SaveOptions,
  type SubmoduleInfo,
  type ParameterInfo,
  type ModelSummary,
  type MacCount,
} from './model/model';
export { type MlpBlock, type MlpSpec, type ModelSignature, type LayerSignature } from './model/mlp';
export { Stats, type LayerStats, type StatsInfo } from './statistics/stats';
export { gatherStats, type GatherOptions } from './statistics/gather';
export { StatsCollector, CalibrationError, type CollectorOptions, type CalibrationBatch } from './statistics/collector';
export {
  DEFAULT_MAX_COVARIANCE_BYTES,
  autoCovarianceSampling,
  type CovarianceOptions,
  type GatherProgress,
} from './statistics/options';
export { CRITERIA, neuronScores, type Criterion } from './pruning/criteria';
export { type Scope } from './pruning/selection';
export { plan, describeTarget, type Plan, type PlanLayer, type PlanOptions } from './pruning/plan';
export { validatePlan, savePlan, loadPlan } from './pruning/plan-file';
export { planCompensated, DEFAULT_SELECTION_RIDGE, type CompensatedPlanOptions } from './pruning/compensated-selection';
export {
  finetune,
  FinetuneError,
  FINETUNE_DEFAULTS,
  PRECISIONS,
  type Precision,
  type FinetuneOptions,
  type FinetuneResult,
  type FinetuneReport,
  type FinetuneProgress,
  type EpochReport,
} from './recovery/finetune';
export { learningRate, type Schedule } from './recovery/schedule';

// Data-parallel work across processes (c10d: TCPStore rendezvous, Gloo collectives)
export {
  initDistributed,
  destroyDistributed,
  distributedInfo,
  distributedFromEnv,
  DEFAULT_TIMEOUT_MS as DEFAULT_DISTRIBUTED_TIMEOUT_MS,
  type DistributedOptions,
  type DistributedInfo,
} from './distributed/group';
export {
  prune,
  DEFAULT_RIDGE,
  type PruneOptions,
  type PruneResult,
  type PruneReport,
  type LayerReport,
  type Compensation,
} from './pruning/prune';

// File formats
export { readNpy, parseNpy, formatNpy } from './formats/npy';
export { parseIdx, readIdx, type IdxArray } from './formats/idx';
export { readModelCard, parseModelCard, modelCardPath, type ModelCard } from './formats/model-card';

// Testing against PyTorch: its tensor files, and comparisons with torch.testing.assert_close's semantics
// (the jest matcher toBeCloseToTensor is registered by the subpath export 'torch-vbp/jest')
export { readTensors, readTensor } from './testing/read-tensors';
export { writeTensors, type WriteTensorsOptions } from './testing/write-tensors';
export { assertClose, isClose, DEFAULT_TOLERANCES, type CloseOptions } from './testing/assert-close';

// Data sets
export { batches, shuffledOrder, type Dataset, type Batch, type Batches, type BatchOptions } from './data/dataset';
export { type Normalisation } from './data/normalisation';
export {
  TRAIN_TRANSFORMS,
  CROP_SCALE,
  CROP_RATIO,
  randomResizedCropBox,
  drawAugmentation,
  resizedCropInto,
  itemRandom,
  type TrainTransform,
  type CropBox,
  type ItemAugmentation,
} from './data/augment';
export { TarShardDataset, type TarShardsOptions } from './data/tar-shards';
export { listTar, type TarMember } from './formats/tar';
export { expandBraces } from './util/braces';
export { IdxDataset, FASHION_MNIST_CLASSES, DEBIAN_FASHION_MNIST, type IdxDatasetOptions } from './data/idx-dataset';
export { NpyDataset, type NpyDatasetOptions } from './data/npy-dataset';
export {
  ImageFolderDataset,
  preprocessImage,
  IMAGENET_MEAN,
  IMAGENET_STD,
  IMAGE_EXTENSIONS,
  type ImagePreprocessing,
  type ImageFolderOptions,
} from './data/image-folder';

// Measurements
export { evaluate, fidelity, type Evaluation, type EvaluateOptions, type EvaluateProgress } from './measure/evaluate';
export { measureLatency, compareLatency, type Latency, type LatencyOptions, type SpeedUp } from './measure/latency';
