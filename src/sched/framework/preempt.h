// Preemption: the smallest set of running jobs whose GPUs, once released, let a queued job fit.
//
// Per node, candidate victims (eligible, cheapest rank first, then fewest GPUs on the node, then
// job id) are released one by one until the job fits; then every chosen victim whose release is
// not needed is put back (no victim in the result can be dropped). The node with the fewest
// victims wins (then the lowest highest-victim rank, then the fewest milli-GPU released, then the
// lowest node index). Gang jobs take the best `nodes` nodes and the union of their victims.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sched/framework/cluster_state.h"
#include "sched/model/model.h"

namespace fastgpu::sched {

// Where each running job holds GPUs, resolved to ClusterState indexes.
class RunningIndex {
 public:
  struct Share {
    int gpu = 0;
    MilliGpu milli = 0;
    MiB mem = 0;
  };
  explicit RunningIndex(const ClusterState& state);
  const std::vector<Share>& shares(int job) const { return shares_[static_cast<size_t>(job)]; }
  const std::vector<int>& jobs_on(int node) const { return on_node_[static_cast<size_t>(node)]; }
  MilliGpu total_milli(int job) const { return total_[static_cast<size_t>(job)]; }

 private:
  std::vector<std::vector<Share>> shares_;
  std::vector<std::vector<int>> on_node_;
  std::vector<MilliGpu> total_;
};

// `eligible[i]` says whether running job i may be preempted for this job; `rank[i]` orders
// victims (lower preempted first). Returns false when no victim set makes the job fit.
bool FindVictims(const ClusterState& state, const RunningIndex& index, const JobRequest& job,
                 std::span<const int> classes, std::span<const char> eligible, std::span<const int64_t> rank,
                 std::vector<int>* victims, std::vector<int>* nodes);

}  // namespace fastgpu::sched
