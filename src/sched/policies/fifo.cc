#include "sched/framework/queue_walk.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class FifoScheduler final : public PolicyScheduler {
 public:
  using PolicyScheduler::PolicyScheduler;
  std::string Name() const override { return "fifo/" + options_.placement; }
  // Runtime predictions only matter for deadlines here.
  bool UsesRuntimeEstimates() const override { return false; }

 protected:
  Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) override {
    Round r(cluster, state, queue, options_, kind_);
    int64_t head = -1;
    std::string behind;
    QueueWalk walk(queue);
    for (JobQueue::Handle i = walk.Next(); i != JobQueue::kNone; i = walk.Next()) {
      // Strict: once the head is blocked, nothing later starts; stop when no more reasons are wanted.
      if (head >= 0 ? !r.want_reason() : r.CanStop()) break;
      if (!r.Admit(i)) continue;
      if (head >= 0) {
        r.PendingWith(i, behind);
        continue;
      }
      if (r.TryBind(i)) continue;
      r.PendingNoFit(i);
      head = i;
      behind = "waiting: behind " + queue.job(i).job_id + ", first in line (fifo)";
    }
    return r.Take();
  }
};

}  // namespace

std::unique_ptr<Scheduler> MakeFifoScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<FifoScheduler>(options, kind);
}

}  // namespace fastgpu::sched
