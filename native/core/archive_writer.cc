#include "core/archive_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <torch/csrc/jit/serialization/export.h>

#include <cerrno>
#include <cstring>

#include "core/errors.h"

namespace vbp {
namespace {

// A file the zip writer writes through: the first failure is kept and later writes are skipped, but every
// write reports success, so that nothing throws inside LibTorch (see archive_writer.h).
class StickyFile {
 public:
  explicit StickyFile(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
    if (fd_ < 0) error_ = errno;
  }
  ~StickyFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  StickyFile(const StickyFile&) = delete;
  StickyFile& operator=(const StickyFile&) = delete;

  size_t write(const void* data, size_t bytes) {
    const char* at = static_cast<const char*>(data);
    for (size_t left = bytes; left > 0 && error_ == 0;) {
      const ssize_t written = ::write(fd_, at, left);
      if (written < 0) {
        if (errno != EINTR) error_ = errno;
        continue;
      }
      at += written;
      left -= static_cast<size_t>(written);
    }
    return bytes;
  }

  // Closes the file; the first error of any write or of the close, 0 when there was none.
  int finish() {
    if (fd_ >= 0 && ::close(fd_) != 0 && error_ == 0) error_ = errno;
    fd_ = -1;
    return error_;
  }

 private:
  int fd_;
  int error_ = 0;
};

}  // namespace

void writeModuleFile(const torch::jit::Module& module, const std::string& path, const torch::jit::ExtraFilesMap& extras) {
  StickyFile file(path);
  torch::jit::ExportModule(
      module, [&file](const void* data, size_t bytes) { return file.write(data, bytes); }, extras);
  if (const int error = file.finish()) {
    throw Error(code::kIo, "cannot write '" + path + "': " + std::strerror(error));
  }
}

}  // namespace vbp
