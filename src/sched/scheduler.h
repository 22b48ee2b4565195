// The scheduler interface. Implementations are pure: same inputs, same decisions.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "sched/model/model.h"

namespace fastgpu::sched {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Decide which queued jobs to start (and which running ones to preempt) now.
  virtual Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) = 0;
  virtual std::string Name() const = 0;
};

// Checks whether `job` could ever run on `cluster` if it were empty (all GPUs free).
// Returns kUnschedulable with a reason ("needs 16 GPUs on one node; the largest node has 8") otherwise.
Status CheckFeasible(const ClusterSnapshot& cluster, const JobRequest& job);

// Creates a scheduler by policy name ("priority-fifo", "fifo", ...) and placement ("best-fit", "spread").
Result<std::unique_ptr<Scheduler>> MakeScheduler(const std::string& policy, const std::string& placement);

}  // namespace fastgpu::sched
