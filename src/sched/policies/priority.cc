#include <algorithm>
#include <limits>

#include "sched/framework/queue_sort.h"
#include "sched/framework/queue_walk.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class PriorityScheduler final : public PolicyScheduler {
 public:
  using PolicyScheduler::PolicyScheduler;
  std::string Name() const override { return "priority/" + options_.placement; }
  // Runtime predictions only matter for deadlines here.
  bool UsesRuntimeEstimates() const override { return false; }

 protected:
  // Bands are -priority; with aging they are merged by effective priority (within one priority,
  // older jobs never have a lower effective priority, so each band stays in order).
  Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) override {
    Round r(cluster, state, queue, options_, kind_);
    std::vector<int64_t> victim_rank(cluster.running.size());
    for (size_t i = 0; i < cluster.running.size(); ++i) victim_rank[i] = cluster.running[i].priority;
    int reservations = 0;
    std::string held;  // suffix for jobs that could not start while nodes are held
    // Highest base priority in the queue, for the early exit.
    const int64_t max_rank =
        queue.empty() ? std::numeric_limits<int64_t>::min() : -queue.bands().begin()->first.band;
    QueueWalk::Rank rank;
    if (options_.aging_ms_per_point > 0) {
      // The band key is -priority.
      rank = [now = cluster.now, aging = options_.aging_ms_per_point](const JobQueue::Entry& e, int64_t band) {
        return -EffectivePriorityMilli(static_cast<int>(-band), e.submitted_at, now, aging);
      };
    }
    QueueWalk walk(queue, std::move(rank));
    Placement p;
    // Most jobs are decided from their band entry (shape) and band (priority) alone.
    for (const JobQueue::Entry* e = walk.NextEntry(); e != nullptr; e = walk.NextEntry()) {
      const JobQueue::Handle i = e->handle;
      if (r.CanStop(max_rank, victim_rank)) break;
      if (!r.Admit(*e)) continue;
      if (r.FindShape(e->shape(), &p)) {
        if (!r.Reserved(i, &p)) r.Bind(i, p);
        continue;
      }
      const int priority = static_cast<int>(-walk.band());
      if (r.preemption_allowed() &&
          r.TryPreempt(i, priority, victim_rank, [priority] { return "priority " + std::to_string(priority); })) {
        continue;
      }
      const JobRequest& shape = queue.shape_request(e->shape());
      if (reservations < options_.max_reservations && !IsFraction(shape)) {
        std::vector<int> nodes = ClosestNodes(r.state(), shape, r.ShapeClasses(e->shape()));
        if (!nodes.empty()) {
          std::string names;
          for (int n : nodes) {
            if (!names.empty()) names += ", ";
            names += r.state().node_view(n).name;
          }
          r.PendingNoFit(i, "; holding " + names + " for it as GPUs free up");
          for (int n : nodes) r.state().Block(n);
          ++reservations;
          if (held.empty()) held = "; " + names + " held for " + queue.job(i).job_id;
          continue;
        }
      }
      r.PendingNoFit(i, held);
    }
    return r.Take();
  }
};

}  // namespace

std::unique_ptr<Scheduler> MakePriorityScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<PriorityScheduler>(options, kind);
}

}  // namespace fastgpu::sched
