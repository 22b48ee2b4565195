#include "sched/framework/round.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace fastgpu::sched {

PlacementKind ParsePlacement(const std::string& name, bool* ok) {
  *ok = true;
  if (name == "best-fit" || name == "consolidate" || name.empty()) return PlacementKind::kBestFit;
  if (name == "spread") return PlacementKind::kSpread;
  *ok = false;
  return PlacementKind::kBestFit;
}

Round::Round(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue,
             const SchedulerOptions& options, PlacementKind kind)
    : cluster_(cluster),
      queue_(queue),
      options_(options),
      kind_(kind),
      state_(state != nullptr ? ClusterState(*state) : ClusterState(cluster)),
      shapes_(queue.shape_count()),
      decided_(queue.handle_limit(), 0) {
  out_.binds.reserve(std::min<size_t>(queue.size(), static_cast<size_t>(state_.total_usable_gpus()) * 4 + 16));
  limit_ = options.max_pending_reasons < 0 ? -1 : options.max_pending_reasons;
  out_.pending.reserve(limit_ < 0 ? queue.size() : std::min<size_t>(queue.size(), static_cast<size_t>(limit_) + 16));
  for (const RunningJob& r : cluster.running) any_stopping_ = any_stopping_ || r.stopping;
}

bool Round::AdmitSlow(Handle i) {
  // Only the compact Info is read unless something has to be checked or said.
  const JobQueue::Info& info = queue_.info(i);
  const Status& capacity = ShapeCapacity(info.shape);
  if (!capacity.ok()) {
    PendingWith(i, capacity.message(), true);
    return false;
  }
  if (info.start_after > cluster_.now) {
    PendingWith(i, want_reason() ? "waiting: start window opens at " + FormatTimestamp(info.start_after) : "");
    return false;
  }
  if (info.finish_before > 0) {
    Status st = CheckDeadline(queue_.job(i), cluster_.now);
    if (!st.ok()) {
      PendingWith(i, st.message(), true);
      return false;
    }
  }
  return true;
}

const Status& Round::ShapeCapacity(uint32_t shape) {
  ShapeMemo& m = shapes_[shape];
  if (m.feasible == 0) {
    m.status = state_.capacity().Check(queue_.shape_request(shape));
    m.feasible = m.status.ok() ? 1 : -1;
  }
  return m.status;
}

const std::vector<int>& Round::ShapeClasses(uint32_t shape) {
  ShapeMemo& m = shapes_[shape];
  if (!m.classes_known) {
    const JobRequest& j = queue_.shape_request(shape);
    state_.MatchClasses(j.gpu_type, j.memory_mib, &m.classes);
    m.classes_known = true;
  }
  return m.classes;
}

bool Round::FindShape(uint32_t shape, Placement* p) {
  // A shape that did not fit does not fit again until the state changes.
  ShapeMemo& m = shapes_[shape];
  if (m.no_fit_version == state_.version() + 1) return false;
  if (FindPlacement(state_, queue_.shape_request(shape), ShapeClasses(shape), kind_, {}, p)) return true;
  m.no_fit_version = state_.version() + 1;
  return false;
}

bool Round::Find(Handle i, Placement* p, std::span<const int> exclude) {
  if (exclude.empty()) return FindShape(queue_.info(i).shape, p);
  return FindPlacement(state_, queue_.job(i), Classes(i), kind_, exclude, p);
}

// A migrated job prefers other GPUs than those it left (JobRequest::avoid_gpus) when they fit: placements are found
// per shape, so its own preference is applied when it is bound.
static const Placement& Preferred(const ClusterState& state, const JobRequest& job, std::span<const int> classes,
                                  PlacementKind kind, const Placement& found, Placement* other) {
  if (job.avoid_gpus.empty()) return found;
  *other = found;
  return AvoidGpus(state, job, classes, kind, other) ? *other : found;
}

void Round::Bind(Handle i, const Placement& found) {
  Placement other;
  const Placement& p = Preferred(state_, queue_.job(i), Classes(i), kind_, found, &other);
  Commit(state_, p);
  out_.binds.push_back(MakeBind(state_, queue_.job(i), p));
  Decide(i);
}

bool Round::TryBind(Handle i) {
  Placement p;
  if (!Find(i, &p)) return false;
  Bind(i, p);
  return true;
}

void Round::PendingWith(Handle i, std::string_view reason, bool never_fits) {
  Decide(i);
  if (!never_fits) {
    if (!want_reason()) {
      ++suppressed_;
      return;
    }
    ++waiting_reported_;
  }
  out_.pending.push_back(sched::Pending{queue_.job(i).job_id, std::string(reason), never_fits});
}

void Round::PendingNoFitReason(Handle i, std::string_view suffix) {
  if (reasons_version_ != state_.version()) {
    reasons_.clear();
    reasons_version_ = state_.version();
  }
  const ShapeKey key = ShapeKey::Of(queue_.job(i));
  auto it = reasons_.find(key);
  if (it == reasons_.end()) it = reasons_.emplace(key, NoFitReason(state_, queue_.job(i), Classes(i))).first;
  if (suffix.empty()) {
    PendingWith(i, it->second);
  } else {
    std::string r = it->second;
    r += suffix;
    PendingWith(i, r);
  }
}

void Round::PendingRest(std::string_view reason) {
  // Insertion order; once no more reasons are wanted the rest are only counted.
  for (Handle i = queue_.first(); i != JobQueue::kNone && want_reason(); i = queue_.next(i)) {
    if (!decided_[i]) PendingWith(i, reason);
  }
  suppressed_ += static_cast<int64_t>(queue_.size() - decided_count_);
  decided_count_ = queue_.size();
}

bool Round::ComputeNothingCanStart(bool held_usable, uint64_t version) {
  const size_t h = held_usable ? 1 : 0;
  const bool any_fraction = queue_.any_fraction();
  const int min_whole_gpus = queue_.min_whole_gpus();
  bool nothing = true;
  if (held_usable) {
    if (any_fraction && (state_.free_whole_gpus() > 0 || state_.partly_free_gpus() > 0)) nothing = false;
    if (nothing && min_whole_gpus <= state_.LargestWholeBlock()) nothing = false;
  } else {
    int most = 0;
    bool shared = false;
    for (int c = 0; c < state_.num_classes(); ++c) {
      most = std::max(most, state_.MaxWholeFree(c));
      shared = shared || !state_.Shared(c).empty();
    }
    if (any_fraction && (most > 0 || shared)) nothing = false;
    if (nothing && min_whole_gpus <= most) nothing = false;
  }
  nothing_version_[h] = version;
  nothing_[h] = nothing;
  return nothing;
}

bool Round::CanStop(int64_t max_rank, std::span<const int64_t> victim_rank) {
  if (!CanStop()) return false;
  if (cluster_.running.empty() || !preemption_allowed()) return true;
  if (attempts_ >= 4 * options_.max_preemptors_per_round + 16) return true;
  ScanVictims(victim_rank);
  return !any_victim_ || min_victim_rank_ >= max_rank;
}

void Round::ScanVictims(std::span<const int64_t> victim_rank) {
  if (victims_scanned_) return;
  victims_scanned_ = true;
  for (size_t r = 0; r < cluster_.running.size(); ++r) {
    const RunningJob& rj = cluster_.running[r];
    if (!rj.preemptible || rj.stopping) continue;
    min_victim_rank_ = any_victim_ ? std::min(min_victim_rank_, victim_rank[r]) : victim_rank[r];
    any_victim_ = true;
  }
}

bool Round::preemption_allowed() const {
  return options_.preemption && !any_stopping_ && preemptors_ < options_.max_preemptors_per_round;
}

bool Round::TryPreempt(Handle i, int64_t rank, std::span<const int64_t> victim_rank,
                       const std::function<std::string()>& why) {
  if (cluster_.running.empty() || !preemption_allowed()) return false;
  // Each attempt scans the running jobs; bound the work per round.
  if (++attempts_ > 4 * options_.max_preemptors_per_round + 16) return false;
  // No running job ranks below this one: nothing to scan.
  ScanVictims(victim_rank);
  if (!any_victim_ || min_victim_rank_ >= rank) return false;
  // The outcome depends on the shape, the rank, the state and the victims taken so far (taking
  // victims blocks nodes, which changes the state version): failures are memoised.
  ShapeMemo& m = shapes_[queue_.info(i).shape];
  const uint64_t version = state_.version() + 1;
  if (m.no_victims_version == version && m.no_victims_rank == rank) return false;
  m.no_victims_version = version;
  m.no_victims_rank = rank;
  const auto& running = cluster_.running;
  if (preempted_.empty()) preempted_.assign(running.size(), 0);
  std::vector<char> eligible(running.size(), 0);
  bool any = false;
  for (size_t r = 0; r < running.size(); ++r) {
    const RunningJob& rj = running[r];
    if (!rj.preemptible || rj.stopping || preempted_[r] || victim_rank[r] >= rank) continue;
    const UnixMillis since = std::max(rj.started_at, rj.last_preempted_at);
    if (cluster_.now - since < options_.min_runtime_ms) continue;
    eligible[r] = 1;
    any = true;
  }
  if (!any) return false;
  if (!running_index_) running_index_ = std::make_unique<RunningIndex>(state_);
  std::vector<int> victims;
  std::vector<int> nodes;
  if (!FindVictims(state_, *running_index_, queue_.job(i), Classes(i), eligible, victim_rank, &victims, &nodes)) {
    return false;
  }
  m.no_victims_version = 0;
  std::string names;
  const std::string because = " (" + why() + ")";
  for (int v : victims) {
    const RunningJob& rj = running[static_cast<size_t>(v)];
    preempted_[static_cast<size_t>(v)] = 1;
    out_.preemptions.push_back(Preempt{rj.job_id, "preempted by " + queue_.job(i).job_id + because});
    if (!names.empty()) names += ", ";
    names += rj.job_id;
  }
  std::string where;
  for (int n : nodes) {
    state_.Block(n);
    if (!where.empty()) where += ", ";
    where += state_.node_view(n).name;
  }
  ++preemptors_;
  PendingWith(i, "waiting: preempting " + names + " to make room on " + where);
  return true;
}

Decisions Round::Take() {
  // Every job gets exactly one verdict.
  PendingRest("waiting: not considered this round");
  out_.unreported = suppressed_;
  return std::move(out_);
}

}  // namespace fastgpu::sched
