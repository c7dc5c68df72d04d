// A c10d process group for data-parallel work across processes: TCPStore rendezvous and Gloo collectives,
// LibTorch's own distributed engine. No Node.js here. Gloo's headers are a build-time dependency (Debian:
// libgloo-dev, the version its LibTorch links); a build without them has no backend (distributedBackends()).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace vbp {

struct DistributedConfig {
  std::string backend = "gloo";
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  int rank = 0;
  int worldSize = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // rendezvous and every collective
};

// The backends this build can create ("gloo" when compiled with Gloo's headers).
std::vector<std::string> distributedBackends();

class DistributedGroup {
 public:
  // Joins the group: rank 0 serves the TCPStore at masterAddr:masterPort, every rank waits for all the others
  // (at most `timeout`). Throws DISTRIBUTED when the port is taken, a rank has another world size, or not
  // every rank comes in time.
  static std::shared_ptr<DistributedGroup> join(const DistributedConfig& config);
  ~DistributedGroup();
  DistributedGroup(const DistributedGroup&) = delete;
  DistributedGroup& operator=(const DistributedGroup&) = delete;

  int rank() const { return config_.rank; }
  int worldSize() const { return config_.worldSize; }
  const DistributedConfig& config() const { return config_; }

  // Collectives: every rank calls them in the same order. Tensors on another device go through host memory
  // (Gloo reduces CPU tensors). A failure or a timeout throws DISTRIBUTED naming this rank and the op.
  void allreduceSum(std::vector<at::Tensor>& tensors);         // in place: the element-wise sum over ranks
  void broadcast(std::vector<at::Tensor>& tensors, int root);  // in place: rank `root`'s values
  std::vector<at::Tensor> allgather(const at::Tensor& input);  // every rank's `input`, in rank order
  void barrier();

 private:
  struct Backend;
  DistributedGroup(DistributedConfig config, std::unique_ptr<Backend> backend);
  [[noreturn]] void fail(const char* op, const std::exception& error) const;

  DistributedConfig config_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace vbp
