// One scheduling round: the working cluster state, admission checks, placement, preemption and
// the decisions being built. Policies decide the order; the round does the rest.
#pragma once

#include <cstdint>
#include <functional>
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

// Jobs are named by their JobQueue handle.
class Round {
 public:
  using Handle = JobQueue::Handle;
  // Starts from a copy of `state` (a caller-kept index of `cluster`) or, when null, indexes `cluster`.
  Round(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue,
        const SchedulerOptions& options, PlacementKind kind);

  ClusterState& state() { return state_; }
  const ClusterSnapshot& cluster() const { return cluster_; }
  const JobRequest& job(Handle i) const { return queue_.job(i); }
  const JobQueue& queue() const { return queue_; }
  UnixMillis now() const { return cluster_.now; }
  PlacementKind kind() const { return kind_; }

  // Checks what does not depend on free capacity: request shape, whether the cluster could ever
  // hold the job, the start window and the deadline. Emits a Pending verdict and returns false
  // when the job cannot start now for one of those reasons.
  bool Admit(Handle i) {
    // Common case from the compact Info alone: a shape known to fit the cluster, no window, no deadline.
    const JobQueue::Info& info = queue_.info(i);
    if (shapes_[info.shape].feasible > 0 && info.start_after <= cluster_.now && info.finish_before <= 0) return true;
    return AdmitSlow(i);
  }
  // The same from the job's band entry (no Info lookup).
  bool Admit(const JobQueue::Entry& e) {
    if (!e.special() && shapes_[e.shape()].feasible > 0) return true;
    return AdmitSlow(e.handle);
  }
  // Classes of GPUs that satisfy the job's type and memory.
  const std::vector<int>& Classes(Handle i) { return ShapeClasses(queue_.info(i).shape); }

  // Jobs of one shape (JobQueue::Info::shape) fit or fail alike; these are memoised per shape.
  // Capacity check of the shape (what Admit reports as never fitting).
  const Status& ShapeCapacity(uint32_t shape);
  const std::vector<int>& ShapeClasses(uint32_t shape);
  // FindPlacement for a job of the shape on the current state (no exclusions).
  bool FindShape(uint32_t shape, Placement* p);

  // Finds a placement without changing anything.
  bool Find(Handle i, Placement* p, std::span<const int> exclude = {});
  // Commits a placement and emits the Bind.
  void Bind(Handle i, const Placement& p);
  // Find + Bind. True once the job is decided: bound, or held back by a reservation (see Reserved).
  bool TryBind(Handle i);
  // Reservations (ClusterSnapshot::reservations): whether job i may not take placement *p because GPUs are
  // reserved for another project. Count-based per GPU type: a job of another project is placed only if enough
  // fully free matching GPUs remain afterwards to cover the part of the reservation its project does not use
  // yet; a window that has not started counts unless the job's runtime limit ends before it starts. When
  // held back and another placement avoids the reserved GPU types, *p becomes that placement and the job
  // is not held back. Otherwise emits the Pending verdict ("waiting: 8 GPUs are reserved for project X
  // from ... to ...") and returns true. Always false (and free) without reservations.
  bool Reserved(Handle i, Placement* p) {
    if (held_.empty()) return false;
    return ReservedSlow(i, p);
  }
  // Emits the Pending verdict for a job that does not fit now ("waiting: needs ...").
  void PendingNoFit(Handle i, std::string_view suffix = {}) {
    if (!want_reason()) {
      Decide(i);
      ++suppressed_;
      return;
    }
    PendingNoFitReason(i, suffix);
  }
  // Emits a Pending verdict. Waiting verdicts (never_fits = false) beyond
  // SchedulerOptions::max_pending_reasons are only counted (Decisions::unreported).
  void PendingWith(Handle i, std::string_view reason, bool never_fits = false);
  bool decided(Handle i) const { return decided_[i] != 0; }
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
  bool CanStop(bool held_usable = false) {
    return limit_ >= 0 && waiting_reported_ >= limit_ && NothingCanStart(held_usable);
  }
  bool CanStop(int64_t max_rank, std::span<const int64_t> victim_rank);
  // No queued job could start on the free GPUs (cached per state version).
  bool NothingCanStart(bool held_usable) {
    const size_t h = held_usable ? 1 : 0;
    // Holding nodes does not change what is free in total, only what is indexed.
    const uint64_t version = held_usable ? state_.alloc_version() : state_.version();
    if (nothing_version_[h] == version) return nothing_[h];
    return ComputeNothingCanStart(held_usable, version);
  }

  // Preemption for job i against running jobs for which `victim_rank(r)` < `rank`, respecting
  // preemptibility, min runtime and jobs already preempted this round. On success emits the
  // Preempt entries and a Pending verdict for job i, holds the freed nodes for it for the rest of
  // the round, and returns true. Victim ranks: lower is preempted first.
  // `why()` gives the text for the victims' reasons ("priority 90"); it is only called on success.
  bool TryPreempt(Handle i, int64_t rank, std::span<const int64_t> victim_rank,
                  const std::function<std::string()>& why);
  bool preemption_allowed() const;
  int preemptors() const { return preemptors_; }

  Decisions Take();

 private:
  void Decide(Handle i) {
    if (decided_[i] == 0) {
      decided_[i] = 1;
      ++decided_count_;
    }
  }

  const ClusterSnapshot& cluster_;
  const JobQueue& queue_;
  const SchedulerOptions& options_;
  PlacementKind kind_;
  ClusterState state_;
  // What is known of each shape (JobQueue::Info::shape) this round.
  struct ShapeMemo {
    int8_t feasible = 0;  // 0 not checked yet, 1 could ever fit, -1 never (status says why)
    bool classes_known = false;
    uint64_t no_fit_version = 0;  // state version + 1 at which Find (no exclusions) failed
    uint64_t no_victims_version = 0;  // state version + 1 at which TryPreempt found no victims...
    int64_t no_victims_rank = 0;      // ...for this rank
    Status status;
    std::vector<int> classes;
  };
  void ScanVictims(std::span<const int64_t> victim_rank);
  // Cross-project preemption rule: whether `project` holds at least its fair share of the usable GPUs
  // (running jobs and this round's binds; weights from SchedulerOptions::project_weights).
  // Projects are named by dense ids (ProjectId) once InitProjects has run.
  bool AtFairShare(uint32_t project);
  int64_t Weight(std::string_view project) const;
  void InitProjects();
  uint32_t ProjectId(std::string_view project);

  // A reservation that may hold GPUs this round (window not over, gpus > 0).
  struct Held {
    const ReservationView* view = nullptr;
    std::vector<char> matches;  // by GPU class
    int64_t used = 0;           // matching GPUs its project's jobs hold (running and bound this round)
    bool started = false;
  };
  void InitReservations();
  bool ReservedSlow(Handle i, Placement* p);
  // Whether `held` counts for `job` (another project's job, and the window has started or the job's
  // runtime limit does not end before it starts).
  bool Applies(const Held& held, const JobRequest& job) const;
  // The first reservation that placement `p` of `job` would cut into, or nullptr.
  const Held* Blocking(const JobRequest& job, const Placement& p) const;
  int64_t FreeMatching(const Held& held) const;
  std::string ReservedReason(const Held& held, const JobRequest& job) const;
  // Whether preempting `victims` for job i would still leave a reservation short (see TryPreempt).
  bool VictimsCutIntoReservation(Handle i, const std::vector<int>& victims);
  bool AdmitSlow(Handle i);
  void PendingNoFitReason(Handle i, std::string_view suffix);
  bool ComputeNothingCanStart(bool held_usable, uint64_t version);

  std::vector<ShapeMemo> shapes_;
  std::unordered_map<ShapeKey, std::string, ShapeKeyHash> reasons_;
  uint64_t reasons_version_ = 0;
  std::vector<char> decided_;  // by handle
  size_t decided_count_ = 0;
  std::unique_ptr<RunningIndex> running_index_;
  std::vector<char> preempted_;
  int preemptors_ = 0;
  int attempts_ = 0;
  bool any_stopping_ = false;
  int64_t limit_ = -1;
  int64_t waiting_reported_ = 0;
  int64_t suppressed_ = 0;
  uint64_t nothing_version_[2] = {~uint64_t{0}, ~uint64_t{0}};
  bool nothing_[2] = {false, false};
  std::vector<Handle> bound_;    // jobs bound this round, in order
  // The cross-project rule's view of the projects, built on first use (InitProjects).
  bool projects_ready_ = false;
  int64_t total_weight_ = 0;     // of the projects with running or queued jobs
  struct ProjectHeld {
    int64_t milli = 0;       // held by running jobs and binds [0, bound_seen) of this round
    size_t bound_seen = 0;
    int64_t weight = 1;
  };
  std::unordered_map<std::string_view, uint32_t> project_ids_;
  std::vector<ProjectHeld> projects_;         // by id
  std::vector<uint32_t> running_project_;     // project id of each running job
  std::vector<uint32_t> bound_project_;       // project id of bound_[i], filled as needed
  // TryPreempt failures once the cross-project rule left other projects' jobs out: they depend on the
  // project too. (shape << 32 | project id) -> (state version + 1, rank).
  std::unordered_map<uint64_t, std::pair<uint64_t, int64_t>> no_victims_by_project_;
  std::vector<Held> held_;       // reservations; empty = none (the common case costs nothing)
  std::vector<int64_t> class_free_;  // fully free usable GPUs per class (only with reservations)
  bool victims_scanned_ = false;
  int64_t min_victim_rank_ = 0;
  bool any_victim_ = false;
  Decisions out_;
};

}  // namespace fastgpu::sched
