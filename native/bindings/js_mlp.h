// Conversion of MLP block descriptions and pruning cuts between JS and the core.
#pragma once

#include <napi.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/mlp_finder.h"
#include "core/prune.h"
#include "core/running_stats.h"

namespace vbp::js {

Napi::Array mlpsToJs(Napi::Env env, const std::vector<MlpBlock>& mlps);

// undefined/null -> nullopt (discover by structure); an array of { fc1, fc2 } -> those pairs.
std::optional<std::vector<std::pair<std::string, std::string>>> mlpPairsFromJs(const Napi::Value& value);

// [{ fc1, fc2, keep: Int32Array|number[], prunedMeans?: Float64Array|number[], means?: Float64Array,
//    covariance?: Float64Array }] -> cuts.
std::vector<LayerCut> cutsFromJs(const Napi::Value& value);

// 'mean' | 'none' | 'lsq', and for 'lsq' the ridge (relative to the mean variance of the kept neurons).
Compensation compensationFromJs(const Napi::Value& mode, const Napi::Value& ridge);

// compensatedSelection's blocks: [{ fc2: path, covariance: Float64Array }] -> the fc2 paths and the
// covariances (copied: the selection runs on the thread pool, after the JS values may be gone).
struct SelectionInput {
  std::vector<std::string> fc2Paths;
  std::vector<std::vector<double>> covariances;
};
SelectionInput selectionInputFromJs(const Napi::Value& blocks);

// undefined -> no covariance; { covariance: boolean, productType?: 'float64' | 'float32' }.
CovarianceOptions covarianceOptionsFromJs(const Napi::Value& value);

}  // namespace vbp::js
