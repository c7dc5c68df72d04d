#include "core/distributed.h"

#include <cstdlib>
#include <sstream>
#include <utility>

#include "core/errors.h"

#if VBP_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace vbp {

namespace {

std::string describe(const DistributedConfig& c) {
  std::ostringstream out;
  out << "rank " << c.rank << " of " << c.worldSize << " (" << c.backend << ", " << c.masterAddr << ":" << c.masterPort << ")";
  return out.str();
}

// The useful line of a c10d or Gloo message (LibTorch's own carry a C++ backtrace after it).
std::string firstLine(const std::string& what) {
  const ErrorInfo info = describeTorchMessage(what, code::kDistributed);
  const auto newline = info.message.find('\n');
  return newline == std::string::npos ? info.message : info.message.substr(0, newline);
}

#if VBP_WITH_GLOO
bool isLoopback(const std::string& address) { return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1"; }
#endif

}  // namespace

std::vector<std::string> distributedBackends() {
#if VBP_WITH_GLOO
  return {"gloo"};
#else
  return {};
#endif
}

#if VBP_WITH_GLOO

struct DistributedGroup::Backend {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

std::shared_ptr<DistributedGroup> DistributedGroup::join(const DistributedConfig& config) {
  if (config.backend != "gloo") {
    throw Error(code::kDistributed, "backend '" + config.backend + "' is not in this build (it has: gloo); NCCL needs a CUDA LibTorch");
  }
  if (config.worldSize < 1 || config.rank < 0 || config.rank >= config.worldSize) {
    throw Error(code::kDistributed, describe(config) + ": the rank must be in [0, world size)");
  }
  auto backend = std::make_unique<Backend>();
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(config.masterPort);
    options.isServer = config.rank == 0;
    options.numWorkers = static_cast<std::size_t>(config.worldSize);
    options.waitWorkers = true;
    options.timeout = config.timeout;
    backend->store = c10::make_intrusive<c10d::TCPStore>(config.masterAddr, options);
  } catch (const std::exception& e) {
    const std::string message = firstLine(e.what());
    const bool taken = message.find("ddress already in use") != std::string::npos;
    throw Error(code::kDistributed, describe(config) + ": " +
                                        (taken ? "the port is in use (choose another --master-port)"
                                               : "the rendezvous failed (" + message + "); did every rank start, with the same address and port?"));
  }
  // Every rank states its world size; a rank started with another one stops here, before any collective.
  try {
    const std::string mine = std::to_string(config.worldSize);
    backend->store->set("vbp/world/" + std::to_string(config.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
    const std::vector<int> others = config.rank == 0 ? [&] {
      std::vector<int> all;
      for (int r = 1; r < config.worldSize; ++r) all.push_back(r);
      return all;
    }()
                                                     : std::vector<int>{0};
    for (int other : others) {
      const std::vector<uint8_t> theirs = backend->store->get("vbp/world/" + std::to_string(other));
      if (std::string(theirs.begin(), theirs.end()) != mine) {
        throw Error(code::kDistributed, describe(config) + ": rank " + std::to_string(other) + " was started with world size " +
                                            std::string(theirs.begin(), theirs.end()));
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(code::kDistributed,
                describe(config) + ": not every rank joined within " + std::to_string(config.timeout.count()) + " ms (" + firstLine(e.what()) + ")");
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(config.timeout);
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface && *interface) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else if (isLoopback(config.masterAddr)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 2;  // torch.distributed's default for Gloo
    backend->group = c10::make_intrusive<c10d::ProcessGroupGloo>(backend->store, config.rank, config.worldSize, options);
  } catch (const std::exception& e) {
    throw Error(code::kDistributed, describe(config) + ": the Gloo group could not connect (" + firstLine(e.what()) + ")");
  }
  return std::shared_ptr<DistributedGroup>(new DistributedGroup(config, std::move(backend)));
}

void DistributedGroup::allreduceSum(std::vector<at::Tensor>& tensors) {
  try {
    std::vector<at::Tensor> host;
    for (const auto& t : tensors) host.push_back(t.device().is_cpu() && t.is_contiguous() ? t : t.to(at::kCPU).contiguous());
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    backend_->group->allreduce(host, options)->wait();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!host[i].is_same(tensors[i])) tensors[i].copy_(host[i]);
    }
  } catch (const std::exception& e) {
    fail("all-reduce", e);
  }
}

void DistributedGroup::broadcast(std::vector<at::Tensor>& tensors, int root) {
  try {
    std::vector<at::Tensor> host;
    for (const auto& t : tensors) host.push_back(t.device().is_cpu() && t.is_contiguous() ? t : t.to(at::kCPU).contiguous());
    c10d::BroadcastOptions options;
    options.rootRank = root;
    backend_->group->broadcast(host, options)->wait();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!host[i].is_same(tensors[i])) tensors[i].copy_(host[i]);
    }
  } catch (const std::exception& e) {
    fail("broadcast", e);
  }
}

std::vector<at::Tensor> DistributedGroup::allgather(const at::Tensor& input) {
  try {
    std::vector<at::Tensor> inputs{input.to(at::kCPU).contiguous()};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int r = 0; r < config_.worldSize; ++r) outputs[0].push_back(at::empty_like(inputs[0]));
    backend_->group->allgather(outputs, inputs)->wait();
    return outputs[0];
  } catch (const std::exception& e) {
    fail("all-gather", e);
  }
}

void DistributedGroup::barrier() {
  try {
    backend_->group->barrier()->wait();
  } catch (const std::exception& e) {
    fail("barrier", e);
  }
}

#else  // no Gloo in this build

struct DistributedGroup::Backend {};

std::shared_ptr<DistributedGroup> DistributedGroup::join(const DistributedConfig& config) {
  throw Error(code::kDistributed, describe(config) +
                                      ": this addon was built without a distributed backend (Gloo's headers were not found at build time; "
                                      "on Debian: apt-get install libgloo-dev, then build again)");
}
void DistributedGroup::allreduceSum(std::vector<at::Tensor>&) {}
void DistributedGroup::broadcast(std::vector<at::Tensor>&, int) {}
std::vector<at::Tensor> DistributedGroup::allgather(const at::Tensor&) { return {}; }
void DistributedGroup::barrier() {}

#endif

DistributedGroup::DistributedGroup(DistributedConfig config, std::unique_ptr<Backend> backend)
    : config_(std::move(config)), backend_(std::move(backend)) {}

DistributedGroup::~DistributedGroup() = default;

void DistributedGroup::fail(const char* op, const std::exception& error) const {
  throw Error(code::kDistributed, describe(config_) + ": " + op + " failed: " + firstLine(error.what()) +
                                      " (another rank stopped, or did not reach this step within " + std::to_string(config_.timeout.count()) +
                                      " ms)");
}

}  // namespace vbp
