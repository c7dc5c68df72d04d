#include "core/errors.h"

#include <c10/util/Exception.h>
#include <torch/csrc/jit/frontend/error_report.h>

#include <array>

namespace vbp {
// Reads an ErrorReport's own message through the friend template operator<< (see compilationErrorMessage).
struct ErrorReportReader {
  std::string* out;
};
}  // namespace vbp

namespace torch::jit {
template <>
const ErrorReport& operator<< <vbp::ErrorReportReader>(const ErrorReport& e, const vbp::ErrorReportReader& reader) {
  *reader.out = e.ss.str();
  return e;
}
}  // namespace torch::jit

namespace vbp {
namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

// LibTorch appends "Exception raised from f at file:line (most recent call first):" and a C++ stack to
// some messages even without backtraces; nothing after it helps a JS user.
std::string dropCppContext(std::string s) {
  for (const char* marker : {"Exception raised from ", "\nframe #0"}) {
    const auto at = s.find(marker);
    if (at != std::string::npos) s.erase(at);
  }
  return trim(s);
}

}  // namespace

ErrorInfo describeTorchMessage(const std::string& what, const char* code) {
  ErrorInfo info{code, dropCppContext(what), ""};
  // Interpreter failures read "The following operation failed in the TorchScript interpreter. Traceback ...
  // RuntimeError: <message>": the message is the last "...Error: " part, the rest is the script traceback.
  static const std::string kInterpreter = "The following operation failed in the TorchScript interpreter";
  if (info.message.find(kInterpreter) != std::string::npos) {
    const auto at = info.message.rfind("Error: ");
    if (at != std::string::npos) {
      info.detail = trim(info.message.substr(0, at));
      info.message = trim(info.message.substr(at + 7));
    }
  }
  return info;
}

std::string compilationErrorMessage(const std::exception& error) {
  const auto* report = dynamic_cast<const torch::jit::ErrorReport*>(&error);
  if (!report) return error.what();
  std::string message;
  *report << ErrorReportReader{&message};
  return "TorchScript compilation failed: " + trim(message);
}

ErrorInfo describeCurrentException(const char* fallbackCode) {
  try {
    throw;
  } catch (const Error& e) {
    return ErrorInfo{e.code(), e.what(), ""};
  } catch (const torch::jit::ErrorReport& e) {
    return ErrorInfo{fallbackCode, compilationErrorMessage(e), ""};
  } catch (const c10::Error& e) {
    return describeTorchMessage(e.what_without_backtrace(), fallbackCode);
  } catch (const std::exception& e) {
    return describeTorchMessage(e.what(), fallbackCode);
  } catch (...) {
    return ErrorInfo{code::kInternal, "unknown native exception", ""};
  }
}

const char* classifyForwardFailure(const std::string& message) {
  // LibTorch kernels' messages for tensors whose rank, sizes or element type do not fit the op. Only
  // failures inside an op get here; the model's own asserts and raises are FORWARD (see TorchModel::run).
  static const std::array<const char*, 15> kShape = {"expected input[",
                                                     "channels, but got",
                                                     "must match the size of tensor",
                                                     "shapes cannot be multiplied",
                                                     "is invalid for input of size",
                                                     "Expected 3D (unbatched) or 4D (batched) input",
                                                     "Expected 4-dimensional input",
                                                     "Expected 2D (unbatched) or 3D (batched) input",
                                                     "size mismatch",
                                                     "Dimension out of range",
                                                     "Calculated padded input size",
                                                     "Kernel size can't be greater than actual input size",
                                                     "expected input with shape",
                                                     "Sizes of tensors must match",
                                                     "The size of tensor a"};
  static const std::array<const char*, 3> kDtype = {"expected scalar type", "Input type (", "not implemented for '"};
  for (const char* fragment : kDtype)
    if (message.find(fragment) != std::string::npos) return code::kInputDtype;
  for (const char* fragment : kShape)
    if (message.find(fragment) != std::string::npos) return code::kInputShape;
  return code::kForward;
}

}  // namespace vbp
