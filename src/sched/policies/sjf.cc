#include "sched/framework/queue_sort.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class SjfScheduler final : public Scheduler {
 public:
  SjfScheduler(const SchedulerOptions& o, PlacementKind k) : options_(o), kind_(k) {}
  std::string Name() const override { return "sjf/" + options_.placement; }

  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) override {
    Round r(cluster, queue, options_, kind_);
    std::vector<int64_t> keys(queue.size());
    for (size_t i = 0; i < queue.size(); ++i) keys[i] = EstimatedRuntimeS(queue[i], options_.default_runtime_s);
    for (uint32_t i : OrderByKey(queue, keys)) {
      if (r.CanStop()) break;
      if (!r.Admit(i)) continue;
      if (!r.TryBind(i)) r.PendingNoFit(i);
    }
    return r.Take();
  }

 private:
  SchedulerOptions options_;
  PlacementKind kind_;
};

}  // namespace

std::unique_ptr<Scheduler> MakeSjfScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<SjfScheduler>(options, kind);
}

}  // namespace fastgpu::sched
