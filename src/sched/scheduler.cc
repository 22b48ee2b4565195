#include "sched/scheduler.h"

#include "sched/framework/cluster_state.h"
#include "sched/framework/feasibility.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {

Decisions Scheduler::Schedule(const ClusterSnapshot& cluster, const JobQueue& queue) {
  const std::vector<JobRequest> jobs = queue.Jobs();
  return Schedule(cluster, std::span<const JobRequest>(jobs));
}

Decisions Scheduler::Schedule(const ClusterState& state, const JobQueue& queue) {
  return Schedule(state.snapshot(), queue);
}

namespace {

// Resolves "default" to the policy it stands for.
std::string PolicyName(const SchedulerOptions& options) {
  return options.policy == "default" ? std::string(kDefaultPolicy) : options.policy;
}

}  // namespace

QueueOrder QueueOrderFor(const SchedulerOptions& options) {
  QueueOrder o;
  const std::string p = PolicyName(options);
  if (p == "priority" || p == "priority-fifo") {
    o.kind = QueueOrder::Kind::kPriority;
  } else if (p == "fair-share" || p == "drf") {
    o.kind = QueueOrder::Kind::kProjectPriority;
  } else if (p == "sjf" || p == "sjf-predicted") {
    o.kind = QueueOrder::Kind::kEstimate;
    o.default_runtime_s = options.default_runtime_s;
  } else if (p == "las" || p == "tiresias") {
    o.kind = QueueOrder::Kind::kAttained;
    o.thresholds_gpu_ms = options.las_thresholds_gpu_ms;
  } else if (p == "fair-las") {
    o.kind = QueueOrder::Kind::kProjectAttained;
    o.thresholds_gpu_ms = options.las_thresholds_gpu_ms;
  }
  return o;
}

Status CheckFeasible(const ClusterSnapshot& cluster, const JobRequest& job) {
  return Capacity(cluster).Check(job);
}

Status CheckDeadline(const JobRequest& job, UnixMillis now) {
  if (job.finish_before <= 0) return Status::Ok();
  const int64_t rt = job.runtime_limit_s > 0 ? job.runtime_limit_s : job.predicted_runtime_s;
  if (rt <= 0) return Status::Ok();
  const UnixMillis start = std::max(now, job.start_after);
  const UnixMillis end = start + rt * 1000;
  if (end <= job.finish_before) return Status::Ok();
  return Unschedulable("cannot finish before " + FormatTimestamp(job.finish_before) + ": a run of " +
                       FormatDuration(rt) + " starting " + (start == now ? "now" : FormatTimestamp(start)) +
                       " ends at " + FormatTimestamp(end));
}

Result<std::unique_ptr<Scheduler>> MakeScheduler(const SchedulerOptions& options) {
  bool ok = false;
  const PlacementKind kind = ParsePlacement(options.placement, &ok);
  if (!ok) {
    return InvalidArgument("unknown placement '" + options.placement + "' (choose best-fit or spread)");
  }
  const std::string p = PolicyName(options);
  if (p == "fifo") return MakeFifoScheduler(options, kind);
  if (p == "priority" || p == "priority-fifo") return MakePriorityScheduler(options, kind);
  if (p == "fair-share" || p == "drf") return MakeFairShareScheduler(options, kind);
  if (p == "sjf" || p == "sjf-predicted") return MakeSjfScheduler(options, kind);
  if (p == "las" || p == "tiresias") return MakeLasScheduler(options, kind);
  if (p == "backfill" || p == "easy") return MakeBackfillScheduler(options, kind);
  if (p == "fair-las") return MakeFairLasScheduler(options, kind);
  std::string names;
  for (const char* n : kPolicyNames) {
    if (!names.empty()) names += ", ";
    names += n;
  }
  return InvalidArgument("unknown scheduling policy '" + p + "' (choose one of: " + names + ", or default)");
}

Result<std::unique_ptr<Scheduler>> MakeScheduler(const std::string& policy, const std::string& placement) {
  SchedulerOptions o;
  o.policy = policy;
  o.placement = placement;
  return MakeScheduler(o);
}

}  // namespace fastgpu::sched
