#include "core/macs.h"

#include <ATen/record_function.h>

#include <cstring>
#include <memory>

#include "core/errors.h"

namespace vbp {
namespace {

struct Counter {
  MacCount count;
  int depth = 0;  // nesting of counted ops on this thread
};

thread_local Counter* activeCounter = nullptr;

const char* kindOf(const char* opName) {
  // Never destroyed: a pool thread may still count an op while the process exits.
  static const auto* const kinds = new std::map<std::string, const char*>{
      {"aten::linear", "linear"},
      {"aten::matmul", "matmul"},
      {"aten::mm", "matmul"},
      {"aten::addmm", "matmul"},
      {"aten::bmm", "matmul"},
      {"aten::baddbmm", "matmul"},
      {"aten::einsum", "matmul"},
      {"aten::conv1d", "conv"},
      {"aten::conv2d", "conv"},
      {"aten::conv3d", "conv"},
      {"aten::convolution", "conv"},
      {"aten::_convolution", "conv"},
      {"aten::conv_transpose1d", "conv"},
      {"aten::conv_transpose2d", "conv"},
      {"aten::conv_transpose3d", "conv"},
      {"aten::scaled_dot_product_attention", "attention"},
  };
  const auto it = kinds->find(opName);
  return it == kinds->end() ? nullptr : it->second;
}

using Args = c10::ArrayRef<const c10::IValue>;

// The op's arguments. The interpreter's optimised plans can hand RecordFunction a window of the stack that
// starts early (seen with LibTorch 1.13): the schema's arity says where the arguments really begin.
Args argumentsOf(const at::RecordFunction& fn) {
  Args args = fn.inputs();
  if (const auto schema = fn.operator_schema()) {
    const size_t arity = schema->arguments().size();
    if (args.size() > arity) args = args.slice(args.size() - arity);
  }
  return args;
}

const at::Tensor* tensorAt(Args args, size_t i) { return i < args.size() && args[i].isTensor() ? &args[i].toTensor() : nullptr; }

// An op's MACs, from its inputs' shapes when it starts: LibTorch's interpreter may reuse the input slots,
// and does not always report outputs, by the time an op ends.
struct OpContext : at::ObserverContext {
  bool outermost = false;
  const char* kind = nullptr;
};

// Elements of the broadcast batch dimensions of two matmul operands.
double broadcastBatch(c10::IntArrayRef a, c10::IntArrayRef b) {
  double p = 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    p *= static_cast<double>(std::max(da, db));
  }
  return p;
}

std::vector<int64_t> intList(Args inputs, size_t i, size_t dims, int64_t fallback) {
  std::vector<int64_t> values;
  if (i < inputs.size() && inputs[i].isIntList()) values = inputs[i].toIntVector();
  if (values.size() == 1) values.assign(dims, values[0]);
  if (values.size() != dims) values.assign(dims, fallback);
  return values;
}

// The counters run when an op starts, before the kernel checks its arguments: arguments the kernel will
// refuse (a zero stride, an empty weight) count as 0 here and never divide, so the kernel's own error is
// what the caller sees.
double convMacs(Args fn, const std::string& name) {
  const at::Tensor* input = tensorAt(fn, 0);
  const at::Tensor* weight = tensorAt(fn, 1);
  if (!input || !weight || weight->dim() < 3 || input->dim() < weight->dim() - 1 || weight->size(0) <= 0) return 0;
  const double perOutput = static_cast<double>(weight->numel()) / static_cast<double>(weight->size(0));
  bool transposed = name.find("transpose") != std::string::npos;
  if (name == "aten::convolution" || name == "aten::_convolution") {
    const Args inputs = fn;
    transposed = inputs.size() > 6 && inputs[6].isBool() && inputs[6].toBool();
  }
  // Transposed: every input element is spread over out_channels/groups * kernel outputs.
  if (transposed) return static_cast<double>(input->numel()) * perOutput;
  const size_t dims = static_cast<size_t>(weight->dim() - 2);
  const auto stride = intList(fn, 3, dims, 1);
  const auto dilation = intList(fn, 5, dims, 1);
  std::vector<int64_t> padding = intList(fn, 4, dims, 0);
  const Args inputs = fn;
  const bool same = inputs.size() > 4 && inputs[4].isString() && inputs[4].toStringRef() == "same";
  for (size_t d = 0; d < dims; ++d) {
    if (stride[d] <= 0 || dilation[d] <= 0 || padding[d] < 0) return 0;
  }
  double outputs = static_cast<double>(weight->size(0));
  if (input->dim() == weight->dim()) outputs *= static_cast<double>(input->size(0));  // batched
  for (size_t d = 0; d < dims; ++d) {
    const int64_t in = input->size(input->dim() - static_cast<int64_t>(dims) + static_cast<int64_t>(d));
    const int64_t k = weight->size(2 + static_cast<int64_t>(d));
    const int64_t out = same ? (in + stride[d] - 1) / stride[d] : (in + 2 * padding[d] - dilation[d] * (k - 1) - 1) / stride[d] + 1;
    outputs *= static_cast<double>(std::max<int64_t>(out, 0));
  }
  return outputs * perOutput;
}

double opMacs(Args fn, const std::string& name, const std::string& kind) {
  if (kind == "attention") {
    const at::Tensor* q = tensorAt(fn, 0);
    const at::Tensor* k = tensorAt(fn, 1);
    const at::Tensor* v = tensorAt(fn, 2);
    if (!q || !k || !v || q->dim() < 2 || k->dim() < 2 || v->dim() < 1) return 0;
    double queries = 1;  // every dimension but the last: no division, so a head dim of 0 counts 0
    for (int64_t d = 0; d + 1 < q->dim(); ++d) queries *= static_cast<double>(q->size(d));
    return queries * static_cast<double>(k->size(-2)) * static_cast<double>(q->size(-1) + v->size(-1));
  }
  if (kind == "conv") return convMacs(fn, name);
  if (name == "aten::einsum") return 0;  // operand layout unknown; einsum is rare in vision transformers
  if (name == "aten::linear") {
    const at::Tensor* x = tensorAt(fn, 0);
    const at::Tensor* w = tensorAt(fn, 1);
    return x && w && w->dim() == 2 ? static_cast<double>(x->numel()) * static_cast<double>(w->size(0)) : 0;
  }
  // matmul/mm/bmm(a, b) and addmm/baddbmm(c, a, b): batch x M x K x N.
  const size_t left = (name == "aten::addmm" || name == "aten::baddbmm") ? 1 : 0;
  const at::Tensor* a = tensorAt(fn, left);
  const at::Tensor* b = tensorAt(fn, left + 1);
  if (!a || !b || a->dim() == 0 || b->dim() == 0) return 0;
  const double m = a->dim() >= 2 ? static_cast<double>(a->size(-2)) : 1;
  const double k = static_cast<double>(a->size(-1));
  const double n = b->dim() >= 2 ? static_cast<double>(b->size(-1)) : 1;
  const auto batchA = a->dim() > 2 ? a->sizes().slice(0, a->dim() - 2) : c10::IntArrayRef{};
  const auto batchB = b->dim() > 2 ? b->sizes().slice(0, b->dim() - 2) : c10::IntArrayRef{};
  return broadcastBatch(batchA, batchB) * m * k * n;
}

std::unique_ptr<at::ObserverContext> onEnter(const at::RecordFunction& fn) {
  Counter* counter = activeCounter;
  const char* kind = counter ? kindOf(fn.name()) : nullptr;
  if (!kind) return nullptr;
  auto op = std::make_unique<OpContext>();
  op->kind = kind;
  op->outermost = counter->depth++ == 0;
  if (op->outermost) {
    const double macs = opMacs(argumentsOf(fn), fn.name(), kind);
    counter->count.total += macs;
    counter->count.byKind[kind] += macs;
  }
  return op;
}

void onExit(const at::RecordFunction& fn, at::ObserverContext* context) {
  Counter* counter = activeCounter;
  if (!counter || !context) return;
  --counter->depth;
}

}  // namespace

struct MacCounter::State {
  Counter counter;
  at::CallbackHandle handle = 0;
};

MacCounter::MacCounter() : state_(std::make_unique<State>()) {
  if (activeCounter != nullptr) throw Error(code::kInternal, "MAC counters cannot nest on one thread");
  activeCounter = &state_->counter;
  state_->handle = at::addThreadLocalCallback(at::RecordFunctionCallback(&onEnter, &onExit).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
}

MacCounter::~MacCounter() {
  at::removeCallback(state_->handle);
  activeCounter = nullptr;
}

const MacCount& MacCounter::count() const { return state_->counter.count; }

MacCountPause::MacCountPause() : paused_(activeCounter) { activeCounter = nullptr; }

MacCountPause::~MacCountPause() { activeCounter = static_cast<Counter*>(paused_); }

MacCount countMacs(TorchModel& model, std::vector<c10::IValue> inputs) {
  MacCounter counter;
  model.run(std::move(inputs));
  return counter.count();
}

}  // namespace vbp
