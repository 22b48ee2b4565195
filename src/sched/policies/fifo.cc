#include "sched/framework/queue_sort.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class FifoScheduler final : public Scheduler {
 public:
  FifoScheduler(const SchedulerOptions& o, PlacementKind k) : options_(o), kind_(k) {}
  std::string Name() const override { return "fifo/" + options_.placement; }

  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) override {
    Round r(cluster, queue, options_, kind_);
    int64_t head = -1;
    std::string behind;
    for (uint32_t i : FifoOrder(queue)) {
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
      behind = "waiting: behind " + queue[i].job_id + ", first in line (fifo)";
    }
    return r.Take();
  }

 private:
  SchedulerOptions options_;
  PlacementKind kind_;
};

}  // namespace

std::unique_ptr<Scheduler> MakeFifoScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<FifoScheduler>(options, kind);
}

}  // namespace fastgpu::sched
