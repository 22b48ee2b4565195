#include "sched/framework/queue_walk.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

// The queue is one band sorted by estimate (EstimatedRuntimeS with default_runtime_s), then submit
// order: walking it is shortest first.
class SjfScheduler final : public PolicyScheduler {
 public:
  using PolicyScheduler::PolicyScheduler;
  std::string Name() const override { return "sjf/" + options_.placement; }

 protected:
  Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) override {
    Round r(cluster, state, queue, options_, kind_);
    QueueWalk walk(queue);
    for (JobQueue::Handle i = walk.Next(); i != JobQueue::kNone; i = walk.Next()) {
      if (r.CanStop()) break;
      if (!r.Admit(i)) continue;
      if (!r.TryBind(i)) r.PendingNoFit(i);
    }
    return r.Take();
  }
};

}  // namespace

std::unique_ptr<Scheduler> MakeSjfScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<SjfScheduler>(options, kind);
}

}  // namespace fastgpu::sched
