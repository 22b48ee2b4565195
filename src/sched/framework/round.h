// One scheduling round: the working cluster state, admission checks, placement, preemption and
// the decisions being built. Policies decide the order; the round does the rest.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sched/framework/cluster_state.h"
#include "sched/framework/feasibility.h"
#include "sched/framework/placement.h"
#include "sched/framework/preempt.h"
#include "sched/scheduler.h"

namespace fastgpu::sched {

PlacementKind ParsePlacement(const std::string& name, bool* ok);

// Runtime used for estimates: limit, else prediction, else `fallback` (seconds).
int64_t EstimatedRuntimeS(const JobRequest& job, int64_t fallback);

class Round {
 public:
  Round(const ClusterSnapshot& cluster, std::span<const JobRequest> queue, const SchedulerOptions& options,
        PlacementKind kind);

  ClusterState& state() { return state_; }
  const ClusterSnapshot& cluster() const { return cluster_; }
  const JobRequest& job(size_t i) const { return queue_[i]; }
  size_t size() const { return queue_.size(); }
  UnixMillis now() const { return cluster_.now; }
  PlacementKind kind() const { return kind_; }

  // Checks what does not depend on free capacity: request shape, whether the cluster could ever
  // hold the job, the start window and the deadline. Emits a Pending verdict and returns false
  // when the job cannot start now for one of those reasons.
  bool Admit(size_t i);
  // Classes of GPUs that satisfy the job's type and memory.
  const std::vector<int>& Classes(size_t i);

  // Finds a placement without changing anything.
  bool Find(size_t i, Placement* p, std::span<const int> exclude = {});
  // Commits a placement and emits the Bind.
  void Bind(size_t i, const Placement& p);
  // Find + Bind.
  bool TryBind(size_t i);
  // Emits the Pending verdict for a job that does not fit now ("waiting: needs ...").
  void PendingNoFit(size_t i, std::string_view suffix = {});
  // Emits a Pending verdict. Waiting verdicts (never_fits = false) beyond
  // SchedulerOptions::max_pending_reasons are only counted (Decisions::unreported).
  void PendingWith(size_t i, std::string_view reason, bool never_fits = false);
  bool decided(size_t i) const { return decided_[i] != 0; }
  // Emits "waiting: <reason>" for every job not decided yet.
  void PendingRest(std::string_view reason);
  // Whether the next waiting verdict is still reported (callers may skip building reasons).
  bool want_reason() const { return limit_ < 0 || waiting_reported_ < limit_; }

  // Early exit for policies: true when waiting verdicts are limited, the limit is reached, and no
  // queued job could start on the GPUs still free (every whole-GPU request is larger than the
  // largest free block, and no fraction could go anywhere). Free GPUs on held (blocked) nodes count
  // only with `held_usable` (policies that unblock nodes during the round). The second form also
  // requires that no preemption is possible for jobs of rank <= `max_rank` (see TryPreempt). Jobs
  // not looked at get no verdict and count as unreported.
  bool CanStop(bool held_usable = false);
  bool CanStop(int64_t max_rank, std::span<const int64_t> victim_rank);
  // No queued job could start on the free GPUs (cached per state version).
  bool NothingCanStart(bool held_usable);

  // Preemption for job i against running jobs for which `victim_rank(r)` < `rank`, respecting
  // preemptibility, min runtime and jobs already preempted this round. On success emits the
  // Preempt entries and a Pending verdict for job i, holds the freed nodes for it for the rest of
  // the round, and returns true. Victim ranks: lower is preempted first.
  bool TryPreempt(size_t i, int64_t rank, std::span<const int64_t> victim_rank, const std::string& why);
  bool preemption_allowed() const;
  int preemptors() const { return preemptors_; }

  Decisions Take();

 private:
  const ClusterSnapshot& cluster_;
  std::span<const JobRequest> queue_;
  const SchedulerOptions& options_;
  PlacementKind kind_;
  ClusterState state_;
  std::optional<Capacity> capacity_;
  std::unordered_map<ShapeKey, Status, ShapeKeyHash> feasible_;
  std::unordered_map<ShapeKey, std::vector<int>, ShapeKeyHash> classes_;
  std::unordered_map<ShapeKey, std::string, ShapeKeyHash> reasons_;
  uint64_t reasons_version_ = 0;
  std::vector<char> decided_;
  std::unique_ptr<RunningIndex> running_index_;
  std::vector<char> preempted_;
  int preemptors_ = 0;
  int attempts_ = 0;
  bool any_stopping_ = false;
  int64_t limit_ = -1;
  int64_t waiting_reported_ = 0;
  int64_t suppressed_ = 0;
  bool scanned_ = false;
  bool any_fraction_ = false;
  int min_whole_gpus_ = 0;
  uint64_t nothing_version_[2] = {~uint64_t{0}, ~uint64_t{0}};
  bool nothing_[2] = {false, false};
  bool victims_scanned_ = false;
  int64_t min_victim_rank_ = 0;
  bool any_victim_ = false;
  Decisions out_;
};

}  // namespace fastgpu::sched
