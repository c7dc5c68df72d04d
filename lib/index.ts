/** torch-vbp: Variance-Based Pruning of TorchScript vision transformers, on a native LibTorch core. */
export { VbpError, isVbpError, type ErrorCode } from './errors';
export { loadModel, Model, type LoadOptions, type SubmoduleInfo, type ParameterInfo, type ModelSummary } from './model';
export { versionInfo, cudaAvailable, cudaDeviceCount, setNumThreads, getNumThreads, nativeMemory, keepLargeAllocations, type Device, type VersionInfo } from './device';
export { type NativeMemory } from './native';
export { tensor, isTensor, expectTensor, numel, type Tensor, type TypedArray, type Value, type DType } from './tensor';
export { type MlpBlock, type MlpSpec, type ModelSignature, type LayerSignature } from './mlp';
export { gatherStats, Stats, StatsCollector, CalibrationError, type CollectorOptions, type LayerStats, type StatsInfo, type GatherOptions, type GatherProgress, type CalibrationBatch } from './stats';
export { plan, validatePlan, savePlan, loadPlan, neuronScores, type Plan, type PlanLayer, type PlanOptions, type Criterion, type Scope } from './plan';
export { prune, type PruneOptions, type PruneResult, type PruneReport, type LayerReport, type Compensation } from './prune';
export { type MacCount } from './model';
export { readNpy, parseNpy, formatNpy } from './data/npy';
export { batches, shuffledOrder, type Dataset, type Batch, type BatchOptions } from './data/dataset';
export { IdxDataset, parseIdx, readIdx, FASHION_MNIST_CLASSES, DEBIAN_FASHION_MNIST, type Normalisation } from './data/idx';
export { NpyDataset } from './data/npy-dataset';
export { ImageFolderDataset, preprocessImage, IMAGENET_MEAN, IMAGENET_STD, type ImagePreprocessing } from './data/image-folder';
export { evaluate, fidelity, type Evaluation, type EvaluateOptions, type EvaluateProgress } from './evaluate';
export { measureLatency, type Latency, type LatencyOptions } from './latency';
export { readModelCard, modelCardPath, type ModelCard } from './model-card';
