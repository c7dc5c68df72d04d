#include "core/gram.h"

#include "core/symbols.h"

namespace vbp {
namespace {

// CBLAS's enums, as the standard fixes them.
constexpr int kRowMajor = 101;
constexpr int kUpper = 121;
constexpr int kTrans = 112;

using Ssyrk = void (*)(int, int, int, int, int, float, const float*, int, float, float*, int);
using Dsyrk = void (*)(int, int, int, int, int, double, const double*, int, double, double*, int);

template <typename Fn>
Fn lookup(const char* name) {
  return reinterpret_cast<Fn>(findSymbol(name));
}

Ssyrk ssyrk() {
  static const Ssyrk fn = lookup<Ssyrk>("cblas_ssyrk");
  return fn;
}

Dsyrk dsyrk() {
  static const Dsyrk fn = lookup<Dsyrk>("cblas_dsyrk");
  return fn;
}

}  // namespace

bool gramUsesSyrk(at::ScalarType dtype) { return (dtype == at::kFloat && ssyrk() != nullptr) || (dtype == at::kDouble && dsyrk() != nullptr); }

at::Tensor symmetricFromUpper(const at::Tensor& upper) { return upper.triu() + upper.triu(1).t(); }

void addGram(at::Tensor& accumulator, const at::Tensor& input) {
  const bool syrk = input.device().is_cpu() && accumulator.is_contiguous() && gramUsesSyrk(input.scalar_type()) && input.size(0) <= INT32_MAX &&
                    input.size(1) <= INT32_MAX;
  if (!syrk) {
    accumulator.add_(at::mm(input.t(), input));
    return;
  }
  const at::Tensor x = input.contiguous();
  const int rows = static_cast<int>(x.size(0));
  const int cols = static_cast<int>(x.size(1));
  // Row-major A [rows, cols] with Trans: C = alpha A^T A + beta C, upper triangle.
  if (x.scalar_type() == at::kDouble) {
    dsyrk()(kRowMajor, kUpper, kTrans, cols, rows, 1.0, x.data_ptr<double>(), cols, 1.0, accumulator.data_ptr<double>(), cols);
    return;
  }
  at::Tensor product = at::empty({cols, cols}, x.options());
  ssyrk()(kRowMajor, kUpper, kTrans, cols, rows, 1.0f, x.data_ptr<float>(), cols, 0.0f, product.data_ptr<float>(), cols);
  accumulator.add_(product);  // float32 products, float64 sums; the lower triangle is unused
}

}  // namespace vbp
