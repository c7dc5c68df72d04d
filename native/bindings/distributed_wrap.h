// The process's c10d group as JS sees it: join, collectives on typed arrays, leave. One group per process,
// as torch.distributed's default group; the trainer takes it from here when asked to train data-parallel.
#pragma once

#include <napi.h>

#include <memory>

#include "core/distributed.h"

namespace vbp::js {

// Adds distributedBackends, distributedInit, distributedDestroy, distributedAllreduce, distributedBroadcast,
// distributedAllgather and distributedBarrier to `exports`.
void defineDistributed(Napi::Env env, Napi::Object exports);

// The group this process joined, or null.
std::shared_ptr<DistributedGroup> currentDistributedGroup();

}  // namespace vbp::js
