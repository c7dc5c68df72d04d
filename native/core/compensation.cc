#include "core/compensation.h"

#include "core/errors.h"

namespace vbp {
namespace {

at::Tensor indexTensor(const std::vector<int64_t>& indices, const c10::Device& device) {
  return at::tensor(indices, at::TensorOptions().dtype(at::kLong)).to(device);
}

// The values as a float64 tensor on `device`; on the CPU a view of the vector, which outlives the tensor
// (a DeiT-B covariance is 75 MB: no second copy).
at::Tensor doubles(const std::vector<double>& values, const c10::Device& device) {
  const at::Tensor view =
      at::from_blob(const_cast<double*>(values.data()), {static_cast<int64_t>(values.size())}, at::TensorOptions().dtype(at::kDouble));
  return device.is_cpu() ? view : view.to(device);
}

// W2[:, P] A with A = C[P, K] (C[K, K] + lambda I)^-1 the ridge predictor of h[P] from h[K], [out, K], without
// forming A when fc2 has fewer outputs than removed neurons: (W2[:, P] C[P, K]) (C[K, K] + lambda I)^-1 then
// costs K^2 out multiplications in the triangular solves instead of K^2 |P|. Any positive multiple of the
// covariance gives the same result (lambda is relative).
at::Tensor foldedPredictor(const at::Tensor& covariance, const at::Tensor& w2p, const at::Tensor& keep, const at::Tensor& pruned, double ridge,
                           const std::string& where) {
  at::Tensor ckk = covariance.index_select(0, keep).index_select(1, keep);
  const at::Tensor ckp = covariance.index_select(0, keep).index_select(1, pruned);
  const double scale = ckk.diagonal().mean().item<double>();
  if (!(scale > 0)) return at::zeros({w2p.size(0), keep.size(0)}, w2p.options());  // every kept neuron is constant
  ckk.diagonal().add_(ridge * scale);
  const auto [factor, info] = at::linalg_cholesky_ex(ckk);
  if (info.item<int64_t>() != 0) {
    throw Error(code::kPrune, where +
                                  ": the covariance of the kept neurons is singular (kept neurons that are constant or "
                                  "linearly dependent on the calibration data); use a ridge > 0 (e.g. 1e-3)");
  }
  if (w2p.size(0) < pruned.size(0)) {
    // (C[K, K] + lambda I) is symmetric: X = B (C[K, K] + lambda I)^-1 is the transpose of solve(.., B^T).
    return at::cholesky_solve(ckp.mm(w2p.t()), factor).t();  // B^T = C[K, P] W2[:, P]^T, [K, out]
  }
  return w2p.mm(at::cholesky_solve(ckp, factor).t());  // A^T = solve(C[K, K] + lambda I, C[K, P])
}

}  // namespace

Fc2Update compensateFc2(const at::Tensor& weight, const at::Tensor& bias, const CompensationInputs& inputs, const Compensation& compensation,
                        const std::string& where) {
  const c10::Device device = weight.device();
  const at::Tensor keep = indexTensor(inputs.keep, device);
  const at::Tensor w2 = weight.to(at::kDouble);
  Fc2Update update{w2.index_select(1, keep), bias.defined() ? bias.to(at::kDouble) : at::Tensor()};
  if (compensation.kind == CompensationKind::None || inputs.pruned.empty()) return update;
  const at::Tensor pruned = indexTensor(inputs.pruned, device);
  const at::Tensor w2p = w2.index_select(1, pruned);
  at::Tensor shift;
  if (compensation.kind == CompensationKind::Mean) {
    // The removed neurons become constants mu[P]; their contribution W2[:, P] mu[P] moves into the bias.
    shift = w2p.matmul(doubles(inputs.prunedMeans, device));
  } else {
    const int64_t hidden = weight.size(1);
    const at::Tensor covariance = doubles(inputs.covariance, device).view({hidden, hidden});
    const at::Tensor mean = doubles(inputs.means, device);
    const at::Tensor folded = foldedPredictor(covariance, w2p, keep, pruned, compensation.ridge, where);  // W2[:, P] A
    update.weight.add_(folded);
    // W2[:, P] (mu[P] - A mu[K]) = W2[:, P] mu[P] - (W2[:, P] A) mu[K].
    shift = w2p.matmul(mean.index_select(0, pruned)) - folded.matmul(mean.index_select(0, keep));
  }
  update.bias = update.bias.defined() ? update.bias + shift : shift;
  return update;
}

}  // namespace vbp
