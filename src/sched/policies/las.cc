#include <algorithm>

#include "sched/framework/queue_walk.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class LasScheduler final : public PolicyScheduler {
 public:
  using PolicyScheduler::PolicyScheduler;
  std::string Name() const override { return "las/" + options_.placement; }
  // Runtime predictions only matter for deadlines here.
  bool UsesRuntimeEstimates() const override { return false; }

  int64_t QueueOf(int64_t attained_gpu_ms) const {
    int64_t q = 0;
    for (int64_t t : options_.las_thresholds_gpu_ms) {
      if (attained_gpu_ms >= t) ++q;
    }
    return q;
  }

  // The LAS queue of a queued job: its band (queue of attained service), or 0 once promoted.
  int64_t KeyOf(UnixMillis submitted_at, int64_t band, UnixMillis now) const {
    if (options_.las_promote_after_ms > 0 && now - submitted_at >= options_.las_promote_after_ms) return 0;
    return band;
  }

 protected:
  // Bands are the LAS queues; promotion merges them (the oldest jobs of a band are promoted first,
  // so each band stays in order).
  Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) override {
    Round r(cluster, state, queue, options_, kind_);
    const UnixMillis now = cluster.now;
    const int64_t levels = static_cast<int64_t>(options_.las_thresholds_gpu_ms.size()) + 1;
    // Rank = levels - queue: higher rank = higher priority; victims need a strictly lower rank.
    std::vector<int64_t> victim_rank(cluster.running.size());
    for (size_t i = 0; i < cluster.running.size(); ++i) {
      victim_rank[i] = levels - QueueOf(cluster.running[i].attained_gpu_ms);
    }
    int64_t max_rank = 0;  // highest rank in the queue, for the early exit
    for (const auto& [key, band] : queue.bands()) {
      // The band's oldest job has waited longest: it is promoted whenever any of the band is.
      max_rank = std::max(max_rank, levels - KeyOf(band.entry(0).submitted_at, key.band, now));
    }
    QueueWalk::Rank rank;
    if (options_.las_promote_after_ms > 0) {
      rank = [this, now](const JobQueue::Entry& e, int64_t band) { return KeyOf(e.submitted_at, band, now); };
    }
    QueueWalk walk(queue, std::move(rank));
    for (JobQueue::Handle i = walk.Next(); i != JobQueue::kNone; i = walk.Next()) {
      if (r.CanStop(max_rank, victim_rank)) break;
      if (!r.Admit(i)) continue;
      if (r.TryBind(i)) continue;
      const JobRequest& job = queue.job(i);
      const int64_t key = KeyOf(job.submitted_at, QueueOf(job.attained_gpu_ms), now);
      if (r.preemption_allowed() &&
          r.TryPreempt(i, levels - key, victim_rank,
                       [key] { return "least attained service, queue " + std::to_string(key); })) {
        continue;
      }
      r.PendingNoFit(i);
    }
    return r.Take();
  }
};

}  // namespace

std::unique_ptr<Scheduler> MakeLasScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<LasScheduler>(options, kind);
}

}  // namespace fastgpu::sched
