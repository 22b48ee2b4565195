#include <algorithm>
#include <limits>

#include "sched/framework/queue_sort.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

// Nodes that come closest to fitting `job` (most fully free GPUs of a matching class among nodes
// big enough), lowest index on ties; empty when too few nodes are big enough.
std::vector<int> ClosestNodes(const ClusterState& s, const JobRequest& job, const std::vector<int>& classes) {
  std::vector<int> out;
  int max_k = 0;
  for (int c : classes) max_k = std::max(max_k, s.gpu_class(c).max_per_node);
  for (int k = max_k; k >= 0 && static_cast<int>(out.size()) < job.nodes; --k) {
    for (int c : classes) {
      if (k > s.gpu_class(c).max_per_node || s.BucketCount(c, k) == 0) continue;
      for (int n = s.FirstInBucket(c, k, 0); n >= 0 && static_cast<int>(out.size()) < job.nodes;
           n = s.FirstInBucket(c, k, n + 1)) {
        if (s.NodeClassGpus(n, c) < job.gpus) continue;
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
      }
    }
  }
  if (static_cast<int>(out.size()) < job.nodes) out.clear();
  return out;
}

class PriorityScheduler final : public Scheduler {
 public:
  PriorityScheduler(const SchedulerOptions& o, PlacementKind k) : options_(o), kind_(k) {}
  std::string Name() const override { return "priority/" + options_.placement; }

  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) override {
    Round r(cluster, queue, options_, kind_);
    std::vector<int64_t> victim_rank(cluster.running.size());
    for (size_t i = 0; i < cluster.running.size(); ++i) victim_rank[i] = cluster.running[i].priority;
    int reservations = 0;
    std::string held;  // suffix for jobs that could not start while nodes are held
    int64_t max_rank = std::numeric_limits<int64_t>::min();  // highest base priority in the queue, for the early exit
    for (const JobRequest& j : queue) max_rank = std::max<int64_t>(max_rank, j.priority);
    for (uint32_t i : PriorityOrder(queue, cluster.now, options_.aging_ms_per_point)) {
      if (r.CanStop(max_rank, victim_rank)) break;
      if (!r.Admit(i)) continue;
      if (r.TryBind(i)) continue;
      const JobRequest& job = queue[i];
      if (r.preemption_allowed() &&
          r.TryPreempt(i, job.priority, victim_rank, "priority " + std::to_string(job.priority))) {
        continue;
      }
      if (reservations < options_.max_reservations && !IsFraction(job)) {
        std::vector<int> nodes = ClosestNodes(r.state(), job, r.Classes(i));
        if (!nodes.empty()) {
          std::string names;
          for (int n : nodes) {
            if (!names.empty()) names += ", ";
            names += r.state().node_view(n).name;
          }
          r.PendingNoFit(i, "; holding " + names + " for it as GPUs free up");
          for (int n : nodes) r.state().Block(n);
          ++reservations;
          if (held.empty()) held = "; " + names + " held for " + job.job_id;
          continue;
        }
      }
      r.PendingNoFit(i, held);
    }
    return r.Take();
  }

 private:
  SchedulerOptions options_;
  PlacementKind kind_;
};

}  // namespace

std::unique_ptr<Scheduler> MakePriorityScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<PriorityScheduler>(options, kind);
}

}  // namespace fastgpu::sched
