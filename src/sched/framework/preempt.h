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

// Where each running job holds GPUs, resolved to ClusterState indexes (flat arrays).
class RunningIndex {
 public:
  struct Share {
    int gpu = 0;
    MilliGpu milli = 0;
    MiB mem = 0;
  };
  explicit RunningIndex(const ClusterState& state);
  std::span<const Share> shares(int job) const {
    return {shares_.data() + share_begin_[static_cast<size_t>(job)],
            shares_.data() + share_begin_[static_cast<size_t>(job) + 1]};
  }
  // Running jobs with a share on the node, ascending.
  std::span<const int> jobs_on(int node) const {
    return {on_node_.data() + node_begin_[static_cast<size_t>(node)],
            on_node_.data() + node_begin_[static_cast<size_t>(node) + 1]};
  }
  MilliGpu total_milli(int job) const { return total_[static_cast<size_t>(job)]; }

 private:
  std::vector<Share> shares_;
  std::vector<uint32_t> share_begin_;  // running jobs + 1
  std::vector<int> on_node_;
  std::vector<uint32_t> node_begin_;  // nodes + 1
  std::vector<MilliGpu> total_;
};

// `eligible[i]` says whether running job i may be preempted for this job; `rank[i]` orders
// victims (lower preempted first). Returns false when no victim set makes the job fit.
bool FindVictims(const ClusterState& state, const RunningIndex& index, const JobRequest& job,
                 std::span<const int> classes, std::span<const char> eligible, std::span<const int64_t> rank,
                 std::vector<int>* victims, std::vector<int>* nodes);

}  // namespace fastgpu::sched
