#include <algorithm>

#include "sched/framework/queue_sort.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class LasScheduler final : public Scheduler {
 public:
  LasScheduler(const SchedulerOptions& o, PlacementKind k) : options_(o), kind_(k) {}
  std::string Name() const override { return "las/" + options_.placement; }

  int64_t QueueOf(int64_t attained_gpu_ms) const {
    int64_t q = 0;
    for (int64_t t : options_.las_thresholds_gpu_ms) {
      if (attained_gpu_ms >= t) ++q;
    }
    return q;
  }

  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) override {
    Round r(cluster, queue, options_, kind_);
    const int64_t levels = static_cast<int64_t>(options_.las_thresholds_gpu_ms.size()) + 1;
    // Rank = levels - queue: higher rank = higher priority; victims need a strictly lower rank.
    std::vector<int64_t> keys(queue.size());
    for (size_t i = 0; i < queue.size(); ++i) {
      int64_t q = QueueOf(queue[i].attained_gpu_ms);
      if (options_.las_promote_after_ms > 0 && cluster.now - queue[i].submitted_at >= options_.las_promote_after_ms) q = 0;
      keys[i] = q;
    }
    std::vector<int64_t> victim_rank(cluster.running.size());
    for (size_t i = 0; i < cluster.running.size(); ++i) {
      victim_rank[i] = levels - QueueOf(cluster.running[i].attained_gpu_ms);
    }
    int64_t max_rank = 0;  // highest rank in the queue, for the early exit
    for (int64_t k : keys) max_rank = std::max(max_rank, levels - k);
    for (uint32_t i : OrderByKey(queue, keys)) {
      if (r.CanStop(max_rank, victim_rank)) break;
      if (!r.Admit(i)) continue;
      if (r.TryBind(i)) continue;
      if (r.preemption_allowed() &&
          r.TryPreempt(i, levels - keys[i], victim_rank, "least attained service, queue " + std::to_string(keys[i]))) {
        continue;
      }
      r.PendingNoFit(i);
    }
    return r.Take();
  }

 private:
  SchedulerOptions options_;
  PlacementKind kind_;
};

}  // namespace

std::unique_ptr<Scheduler> MakeLasScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<LasScheduler>(options, kind);
}

}  // namespace fastgpu::sched
