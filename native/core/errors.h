// Errors of the LibTorch core: a stable code and a message without C++ backtraces. Every code here must be
// listed with `native: true` in ERROR_CODES (lib/errors.ts); test/errors.test.ts checks both lists.
#pragma once

#include <stdexcept>
#include <string>

namespace vbp {

namespace code {
inline constexpr const char* kModelNotFound = "MODEL_NOT_FOUND";
inline constexpr const char* kModelLoad = "MODEL_LOAD";
inline constexpr const char* kModelSave = "MODEL_SAVE";
inline constexpr const char* kInput = "INPUT";
inline constexpr const char* kInputShape = "INPUT_SHAPE";
inline constexpr const char* kInputDtype = "INPUT_DTYPE";
inline constexpr const char* kForward = "FORWARD";
inline constexpr const char* kDevice = "DEVICE";
inline constexpr const char* kDisposed = "DISPOSED";
inline constexpr const char* kNoMlp = "NO_MLP";
inline constexpr const char* kMlpSpec = "MLP_SPEC";
inline constexpr const char* kStats = "STATS";
inline constexpr const char* kPlan = "PLAN";
inline constexpr const char* kPrune = "PRUNE";
inline constexpr const char* kNotTrainable = "NOT_TRAINABLE";
inline constexpr const char* kNonFinite = "NON_FINITE";
inline constexpr const char* kIo = "IO";
inline constexpr const char* kData = "DATA";
inline constexpr const char* kLibtorchMismatch = "LIBTORCH_MISMATCH";
inline constexpr const char* kDistributed = "DISTRIBUTED";
inline constexpr const char* kAborted = "ABORTED";
inline constexpr const char* kInvalidArgument = "INVALID_ARGUMENT";
inline constexpr const char* kInternal = "INTERNAL";
}  // namespace code

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

struct ErrorInfo {
  std::string code;
  std::string message;  // the useful part: one or a few lines
  std::string detail;   // TorchScript traceback when there is one (never a C++ backtrace)
};

// Describes the exception currently being handled (call from a catch block). `fallbackCode` is used for
// LibTorch and standard exceptions that carry no code of their own.
ErrorInfo describeCurrentException(const char* fallbackCode);

// Splits a LibTorch message into its useful last part and the TorchScript traceback before it.
ErrorInfo describeTorchMessage(const std::string& what, const char* code);

// The message of a TorchScript compilation error without calling its what(): what() is noexcept and
// lazily unpickles the archive's debug info to highlight the source, so a damaged archive makes it throw
// inside noexcept, which terminates the process.
std::string compilationErrorMessage(const std::exception& error);

// Classifies a failure inside a LibTorch op during forward from its message: INPUT_SHAPE, INPUT_DTYPE or FORWARD.
const char* classifyForwardFailure(const std::string& message);

}  // namespace vbp
