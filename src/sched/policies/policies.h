// Scheduling policies. Each orders the queue its own way and uses the shared framework (admission,
// filter/score placement, gang, preemption, reservations) to turn it into decisions.
#pragma once

#include <memory>

#include "sched/framework/cluster_state.h"
#include "sched/framework/placement.h"
#include "sched/scheduler.h"

namespace fastgpu::sched {

// Common shell of the policies: a span is indexed into a JobQueue of the policy's order, and a
// JobQueue of another order is re-indexed; Run() then walks the queue.
class PolicyScheduler : public Scheduler {
 public:
  PolicyScheduler(const SchedulerOptions& options, PlacementKind kind)
      : options_(options), kind_(kind), order_(QueueOrderFor(options)) {}
  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) final {
    const JobQueue q = JobQueue::View(order_, queue);
    return Run(cluster, nullptr, q);
  }
  Decisions Schedule(const ClusterSnapshot& cluster, const JobQueue& queue) final {
    return Ordered(cluster, nullptr, queue);
  }
  Decisions Schedule(const ClusterState& state, const JobQueue& queue) final {
    return Ordered(state.snapshot(), &state, queue);
  }
  QueueOrder queue_order() const final { return order_; }

 protected:
  // `state`: a caller-kept index of `cluster` to start the round from, or nullptr.
  virtual Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) = 0;

  Decisions Ordered(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) {
    if (queue.order() == order_) return Run(cluster, state, queue);
    const JobQueue q(order_, queue);
    return Run(cluster, state, q);
  }

  const SchedulerOptions options_;
  const PlacementKind kind_;
  const QueueOrder order_;
};

// fifo: submit order, strict. The first job that does not fit blocks every later one (jobs that
// can never fit, are outside their start window or cannot meet their deadline do not block).
std::unique_ptr<Scheduler> MakeFifoScheduler(const SchedulerOptions& options, PlacementKind kind);

// priority: effective priority (priority + aging, see SchedulerOptions) descending,
// then FIFO. A job that does not fit first tries preemption of lower-priority preemptible jobs;
// otherwise the highest blocked whole-GPU job holds the nodes closest to fitting it (the ones
// with the most free GPUs), so they drain for it, while lower jobs keep starting on every other
// node. Jobs that do not fit never block the ones behind them.
std::unique_ptr<Scheduler> MakePriorityScheduler(const SchedulerOptions& options, PlacementKind kind);

// fair-share: weighted dominant-resource fairness across projects over (milli-GPU, GPU memory).
// The project with the lowest weighted dominant share (running jobs plus this round's binds)
// starts its next job (priority, then FIFO, inside a project); ties by project name.
std::unique_ptr<Scheduler> MakeFairShareScheduler(const SchedulerOptions& options, PlacementKind kind);

// sjf: shortest estimated runtime first (prediction, else runtime limit, else
// default_runtime_s), then FIFO. Non-blocking.
std::unique_ptr<Scheduler> MakeSjfScheduler(const SchedulerOptions& options, PlacementKind kind);

// las: Tiresias discretised two-dimensional least-attained-service. Queues by attained
// GPU-time (las_thresholds_gpu_ms), FIFO inside a queue. A job that does not fit may preempt
// running preemptible jobs of a lower-priority (higher-numbered) queue that have run at least
// min_runtime_ms. Optional promotion to queue 0 after las_promote_after_ms of waiting.
std::unique_ptr<Scheduler> MakeLasScheduler(const SchedulerOptions& options, PlacementKind kind);

// backfill: EASY backfilling. FIFO; the first job that does not fit gets a reservation: the
// earliest time (shadow time) at which running jobs, ending at started_at + runtime limit (or
// predicted runtime), free enough GPUs for it, on the nodes it would then use. Later jobs start
// when they fit outside those nodes, or when their own runtime limit (or prediction) ends before
// the shadow time. Jobs without any runtime estimate only use nodes outside the reservation.
std::unique_ptr<Scheduler> MakeBackfillScheduler(const SchedulerOptions& options, PlacementKind kind);

// fair-las (the recommended default): needs no runtime estimates. Jobs are ordered by priority (higher
// first), then by the LAS queue of their own attained GPU-time (las_thresholds_gpu_ms); inside a queue
// the project holding the fewest GPUs (divided by its project_weights weight, updated as the round
// binds) starts its smallest job next, FIFO among equals. A job that does not fit may preempt
// preemptible jobs of a strictly lower priority (whatever their LAS queue) or of the same priority and
// a lower LAS queue; never a higher-priority job. Starvation guard, within each priority:
// max_reservations jobs per round that never ran and were submitted starvation_after_ms ago or earlier
// (of the least-served project first, then the oldest) go first; one that does not fit holds the nodes
// closest to fitting it so that they drain. Non-preemptible jobs are never victims.
std::unique_ptr<Scheduler> MakeFairLasScheduler(const SchedulerOptions& options, PlacementKind kind);


}  // namespace fastgpu::sched
