/** torch-vbp: Variance-Based Pruning of TorchScript vision transformers, on a native LibTorch core. */
export { VbpError, isVbpError, type ErrorCode } from './errors';
export { loadModel, Model, type LoadOptions, type SubmoduleInfo, type ParameterInfo, type ModelSummary } from './model';
export { versionInfo, cudaAvailable, cudaDeviceCount, setNumThreads, getNumThreads, nativeMemory, type Device, type VersionInfo } from './device';
export { type NativeMemory } from './native';
export { tensor, isTensor, expectTensor, numel, type Tensor, type TypedArray, type Value, type DType } from './tensor';
export { type MlpBlock, type MlpSpec, type ModelSignature, type LayerSignature } from './mlp';
export { gatherStats, Stats, StatsCollector, CalibrationError, type CollectorOptions, type LayerStats, type StatsInfo, type GatherOptions, type GatherProgress, type CalibrationBatch } from './stats';
export { plan, validatePlan, savePlan, loadPlan, neuronScores, type Plan, type PlanLayer, type PlanOptions, type Criterion, type Scope } from './plan';
export { prune, type PruneOptions, type PruneResult, type PruneReport, type LayerReport, type Compensation } from './prune';
export { type MacCount } from './model';
export { readNpy, parseNpy, formatNpy } from './data/npy';
