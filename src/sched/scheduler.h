// The scheduler interface. Implementations are pure: same inputs, same decisions.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "sched/model/job_queue.h"
#include "sched/model/model.h"

namespace fastgpu::sched {

class ClusterState;  // sched/framework/cluster_state.h

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Decide which queued jobs to start (and which running ones to preempt) now.
  // Every job in `queue` gets exactly one verdict: a Bind or a Pending entry. With
  // SchedulerOptions::max_pending_reasons >= 0 some waiting jobs get no entry instead; they are
  // counted in Decisions::unreported.
  virtual Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) = 0;
  // The same decisions for the queue's jobs in insertion order. The policies walk `queue` in place
  // when it was built with their queue_order() (a round then touches only the jobs it looks at),
  // and index a copy otherwise; this default copies the jobs and calls the span version.
  virtual Decisions Schedule(const ClusterSnapshot& cluster, const JobQueue& queue);
  // The same decisions for state.snapshot(), starting from a caller-kept index of it instead of
  // indexing the snapshot on every call. `state` must be what ClusterState(state.snapshot()) builds:
  // a caller that changes the snapshot makes the same changes with ClusterState::Allocate/Release
  // (ClusterState::SameAs checks it). This default ignores the index.
  virtual Decisions Schedule(const ClusterState& state, const JobQueue& queue);
  // How a caller-kept JobQueue should be indexed for this scheduler.
  virtual QueueOrder queue_order() const { return {}; }
  // Whether decisions depend on the predicted_runtime_s of queued jobs other than through deadlines
  // (finish_before). When not, a caller may leave queued jobs' predictions as they were on submission.
  virtual bool UsesRuntimeEstimates() const { return true; }
  virtual std::string Name() const = 0;
};


// Policy names accepted by MakeScheduler.
// "default" names the recommended policy (kDefaultPolicy).
inline constexpr const char* kPolicyNames[] = {"fifo", "priority", "fair-share", "sjf",
                                                "las",  "backfill", "fair-las"};
// What MakeScheduler makes for policy "default".
inline constexpr const char* kDefaultPolicy = "fair-las";
// Placement names accepted by MakeScheduler.
inline constexpr const char* kPlacementNames[] = {"best-fit", "spread"};

// Tunables. Defaults are what the server uses but for `policy`: the server runs "default"
// (kDefaultPolicy, server::ServiceOptions::policy); see docs in each field.
struct SchedulerOptions {
  std::string policy = "priority";
  std::string placement = "best-fit";

  // How many "waiting" Pending entries a round produces, at most (-1 = one for every queued job,
  // the default). Jobs are reported in the policy's order, so the first N waiting jobs get their
  // reason. With a limit, a round also stops looking at the queue once it has N waiting verdicts
  // and no later job could start (no free GPU is large enough for any queued request, or a strict
  // policy's head is blocked) and no preemption is possible; jobs it did not reach get no entry.
  // Binds and preemptions are the same as without a limit. Never-fits entries (rejections) are
  // produced for every job the round looked at, whatever the limit. Replays use a small limit;
  // user-facing callers should keep reasons for at least the first ~1000 queued jobs.
  int64_t max_pending_reasons = -1;

  // priority: a queued job's effective priority grows by 1 for every `aging_ms_per_point` it has
  // waited (default: +1 per 10 minutes, unbounded), so a priority-0 job overtakes a freshly
  // submitted priority-100 job after ~16.7 hours. 0 disables aging.
  int64_t aging_ms_per_point = 10 * 60 * 1000;
  // priority: how many blocked jobs (highest first) may hold nodes so that they drain for them.
  // Lower-priority jobs keep running on every other node (backfill without runtime estimates).
  // fair-las: how many starving jobs go first each round (see starvation_after_ms).
  int max_reservations = 1;

  // Preemption (priority, las, fair-las). A running job is a victim only when it is preemptible, has a
  // strictly lower priority (las: a strictly lower-priority queue; fair-las: a lower priority, or the same
  // priority and a lower-priority queue) and has run at least `min_runtime_ms` since it started or was
  // last resumed (server flag --preempt-min-runtime).
  bool preemption = true;
  int64_t min_runtime_ms = 5 * 60 * 1000;
  int max_preemptors_per_round = 8;
  // Every policy that preempts: a job never preempts a job of another project while its own project
  // already holds at least its fair share of the GPUs (healthy GPUs x its weight / the sum of the
  // weights of the projects with running or queued jobs; project_weights, default 1), unless this is
  // true (server flag --preempt-across-projects).
  bool preempt_across_projects = false;

  // fair-share, fair-las and the cross-project preemption rule: weight per project (default 1).
  // Shares are divided by the weight.
  std::map<std::string, int64_t> project_weights;

  // sjf / backfill / ga: runtime assumed when a job has neither a prediction nor a limit.
  int64_t default_runtime_s = 3600;

  // las: queue boundaries on attained GPU service, in GPU-milliseconds (ascending).
  // Default: queue 0 below 1 GPU-hour, queue 1 below 16 GPU-hours, queue 2 above.
  std::vector<int64_t> las_thresholds_gpu_ms = {3'600'000, 16 * 3'600'000};
  // las: a job that has waited longer than this moves to queue 0 (0 = never).
  int64_t las_promote_after_ms = 0;

  // fair-las: a queued job that has never run starves once it was submitted this long ago. Each round
  // max_reservations (at least 1) starving jobs go before every other job (of the project holding the
  // fewest GPUs first, then the oldest): each starts if it fits, else preempts as its LAS queue allows,
  // else holds the nodes closest to fitting it until they drain. 0 disables the guard. Default: one day.
  int64_t starvation_after_ms = 24 * 3'600'000;
  // fair-las: a job also starves only once its age is at least this many times the mean age of the
  // queued jobs (0 = no such condition). When every job waits long (an overloaded cluster) putting the
  // oldest first cannot bound waits and only costs throughput (holding nodes idles GPUs); the guard
  // then keeps to the outliers.
  int64_t starvation_mean_age_multiple = 4;

};

// Checks whether `job` could ever run on `cluster` if it were empty (all GPUs free). Every node
// counts, healthy or not. Returns kUnschedulable with a reason ("needs 16 GPUs on one node; the
// largest node has 8 A100-80GB") otherwise, or kInvalidArgument for malformed requests.
Status CheckFeasible(const ClusterSnapshot& cluster, const JobRequest& job);

// Deadline-aware admission: kUnschedulable when the job cannot finish before job.finish_before
// if it started at `now` (now + runtime_limit_s, or predicted_runtime_s when there is no limit).
// OK when there is no deadline or no runtime estimate.
Status CheckDeadline(const JobRequest& job, UnixMillis now);

// Creates a scheduler by policy name (see kPolicyNames; "priority-fifo" is an alias of
// "priority") and placement ("best-fit", "spread").
Result<std::unique_ptr<Scheduler>> MakeScheduler(const std::string& policy, const std::string& placement);
Result<std::unique_ptr<Scheduler>> MakeScheduler(const SchedulerOptions& options);

// The queue order of a policy: what MakeScheduler(options)->queue_order() returns.
QueueOrder QueueOrderFor(const SchedulerOptions& options);

}  // namespace fastgpu::sched
